// Environment for every wrangler/miniflare run here: fully offline, no telemetry, no Request.cf download.
export const offlineEnv = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
};
Object.assign(process.env, offlineEnv);
