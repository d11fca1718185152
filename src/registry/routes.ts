// /v1/registry/*: forwarded to the registry Worker (scaffold; routes land with issue #11).
import { createRouter } from "../platform/app";

export const registryRoutes = createRouter();
