// Test-only bindings added in vitest.config.mts, and the main module's type for `exports.default`.
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    RECEIVER_URL: string;
    /** scripts/fake-archive.mjs on loopback, allowed past FILE_PROXY_ALLOWED_PRIVATE_HOSTS in tests. */
    ARCHIVE_URL: string;
    /** scripts/fake-sap.mjs (SAP OData) on loopback, or "" before it exists. */
    SAP_ODATA_URL: string;
    /** scripts/fake-telematics.mjs (the telematics API) on loopback, or "" before it exists. */
    TELEMATICS_API_URL: string;
    TEST_REGISTRY_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** test/fixtures/apps/echo bundled with the SDK and zod (vitest.config.mts). */
    TEST_SDK_APP_BUNDLE: string;
    /** blueprints/examples/sap-normalise bundled like `erp-edge app build` (the README walkthrough's app). */
    TEST_SAP_NORMALISE_BUNDLE: string;
    /** JSON: blueprints/<name>/ with a blueprint.json, its files and its built app (vitest.config.mts repoBlueprints). */
    TEST_REPO_BLUEPRINTS: string;
    /** The registry Worker's D1 database, bound here only in tests (to migrate and inspect it). */
    REGISTRY_DB: D1Database;
    /** The registry Worker's bundle store (tests only: to tamper with a stored archive). */
    BUNDLES: R2Bucket;
  }
  interface GlobalProps {
    mainModule: typeof import("../src/index");
  }
}
