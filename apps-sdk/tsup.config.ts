// Builds the SDK's public entry points and the erp-edge CLI into dist/ (ESM, with type declarations).
import { defineConfig } from "tsup";

export default defineConfig({
  // cli: the executable; cli-api: the same code as functions, for the repository's own scripts (npm start).
  entry: { index: "src/index.ts", blueprint: "src/blueprint/index.ts", cli: "src/cli/bin.ts", "cli-api": "src/cli/api.ts" },
  format: ["esm"],
  target: "node20",
  platform: "node",
  // Declarations come from tsc (tsconfig.build.json): tsup's dts bundler needs the TypeScript 5 API.
  dts: false,
  // Only its own outputs: dist/types comes from tsc and must survive a rebuild (npm start rebuilds).
  clean: ["*.js", "*.js.map"],
  sourcemap: true,
});
