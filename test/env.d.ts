// Test-only bindings added in vitest.config.mts, and the main module's type for `exports.default`.
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    RECEIVER_URL: string;
  }
  interface GlobalProps {
    mainModule: typeof import("../src/index");
  }
}
