// Applies the same numbered migrations `npm start` applies; safe to run more than once.
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { configureMapping } from "../src/mapping/expression";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The registry Worker's database (shared with the auxiliary registry Worker, see vitest.config.mts).
await applyD1Migrations(env.REGISTRY_DB, env.TEST_REGISTRY_MIGRATIONS);

// Tests that call the mapping engine directly follow the same MAPPING_COMPILER setting as the Worker.
configureMapping(env);
