// Secure proxies and managed calls (epilot ERP Integration API).
import { createRouter } from "../platform/app";

export const managedCallRoutes = createRouter();
