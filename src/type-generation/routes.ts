// Type generation: TypeScript types for an integration's entity schemas and mapped events.
import { createRouter } from "../platform/app";

export const typeGenerationRoutes = createRouter();
