// One Worker (and one webhook receiver) for every browser-test file: starting wrangler dev takes
// seconds, so files share it and isolate their data by creating a tenant each (harness.createTenant).
import type { TestProject } from "vitest/node";
// @ts-expect-error: a plain .mjs script without types
import { startReceiver } from "../scripts/receiver.mjs";
import { startWorker } from "./worker";

declare module "vitest" {
  export interface ProvidedContext {
    hub: { base: string; adminToken: string; receiverUrl: string; logPath: string };
  }
}

export default async function setup(project: TestProject) {
  const receiver = (await startReceiver()) as { server: import("node:http").Server; port: number };
  const receiverHost = `127.0.0.1:${receiver.port}`;
  const worker = await startWorker({
    // Outbound deliveries may reach the loopback receiver, and fail over quickly (the DLQ flow).
    OUTBOUND_ALLOWED_PRIVATE_HOSTS: receiverHost,
    OUTBOUND_RETRY_BASE_MS: "50",
    OUTBOUND_RETRY_MAX_MS: "200",
    TENANT_RATE_LIMIT_PER_SECOND: "1000",
  });
  project.provide("hub", { base: worker.base, adminToken: worker.adminToken, receiverUrl: `http://${receiverHost}`, logPath: worker.logPath });
  return async () => {
    await worker.stop();
    receiver.server.close();
  };
}
