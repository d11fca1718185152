// The Hub's browser tests (npm run test:ui): Node-side vitest files driving Chromium with playwright-core
// against one real `wrangler dev` started by global-setup.ts. Kept out of `npm test`, which needs no browser.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "hub-ui",
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
    environment: "node",
    globalSetup: ["./global-setup.ts"],
    // Files run one after another: one Chromium at a time keeps the run predictable on small CI machines.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 150_000,
  },
});
