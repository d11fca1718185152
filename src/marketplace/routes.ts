// /v1/blueprints/*: trust, plan-first installs, upgrades, rollbacks and removals (scaffold).
import { createRouter } from "../platform/app";

export const marketplaceRoutes = createRouter();
