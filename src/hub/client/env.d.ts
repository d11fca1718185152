// esbuild bundles imported stylesheets into main.css; to TypeScript they are side-effect modules.
declare module "*.css";
