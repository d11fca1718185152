// Webhook configurations (epilot's Webhooks API): the webhooks outbound mappings reference by webhook_id.
import { createRouter } from "../platform/app";

export const webhookConfigRoutes = createRouter();
