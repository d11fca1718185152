// The erp-edge Worker: assembles every bounded context's routes and the edge behaviour they share.
import { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { runDuePulls } from "./inbound/pull";
import { appRoutes } from "./apps/routes";
import { deleteExpiredRuns } from "./apps/service";
import { entityRoutes } from "./entities/routes";
import { fileProxyRoutes } from "./file-proxy/routes";
import { inboundRoutes } from "./inbound/routes";
import { integrationRoutes } from "./integrations/routes";
import { tenantDataLocations } from "./integrations/service";
import { purgeEventLogs } from "./inbound/service";
import { purgeEntityStores } from "./entities/service";
import { configureMapping } from "./mapping/expression";
import { mappingRoutes } from "./mapping/routes";
import { marketplaceRoutes } from "./marketplace/routes";
import { applyRetention } from "./monitoring/service";
import { accessLog, purgeAccessLogs } from "./monitoring/access-log";
import { monitoringRoutes } from "./monitoring/routes";
import { outboundRoutes } from "./outbound/routes";
import { configEndpointId, endpointsOfIntegrations, fanOutMany, purgeEndpoints, recordDeadCoreEvent, sweepAckTimeouts } from "./outbound/service";
import { configIdsOfTenant } from "./webhook-configs/service";
import { eventsOfMessage, type CoreEventEnvelope, type CoreEventMessage } from "./platform/core-events";
import { crashPoint } from "./platform/crash-points";
import type { AppEnv } from "./platform/app";
import { AppError, errorResponse, onError } from "./platform/errors";
import { configWrites, limitBody, requestIds, requireJsonBodies } from "./platform/middleware";
import { requireAdmin } from "./platform/auth";
import { registryRoutes } from "./registry/routes";
import { managedCallRoutes } from "./managed-calls/routes";
import { typeGenerationRoutes } from "./type-generation/routes";
import { webhookConfigRoutes } from "./webhook-configs/routes";
import { tenantRoutes } from "./tenants/routes";
import { hubRoutes } from "./hub/routes";

import { VERSION } from "./platform/version";
/** The dead-letter queue of erp-edge-core-events (wrangler.toml). */
const CORE_EVENTS_DLQ = "erp-edge-core-events-dlq";

export const app = new OpenAPIHono<AppEnv>();

app.use(async (c, next) => {
  configureMapping(c.env);
  await next();
});
app.use(requestIds, limitBody, requireJsonBodies, configWrites, accessLog);

app.get("/", (c) =>
  c.json({ name: "erp-edge", version: VERSION, openapi: "/openapi.json", docs: "/docs" }),
);

// Benchmark baseline: a bare route doing only what any JSON route does (read and parse the body),
// present only when the BENCH setting is "true" (npm run bench sets it; it is absent otherwise).
app.post("/__bench/bare", async (c, next) => {
  if (String(c.env.BENCH) !== "true") return next();
  await c.req.json();
  return c.json({ ok: true });
});

// Per-event data lives in Durable Objects, not in D1 rows that cascade: deleting an integration
// deletes its event log and endpoints' deliveries, deleting a tenant also its entity stores (after the D1 delete succeeded).
// v1 and v2 delete alike (epilot serves both).
for (const path of ["/v1/integrations/:id", "/v2/integrations/:id"]) {
  app.delete(path, async (c, next) => {
    // The endpoint directory is read before the D1 delete cascades it away (ids only, nothing else).
    const endpoints = await endpointsOfIntegrations(c.env.DB, [c.req.param("id")!]);
    await next();
    if (c.res.ok) {
      const ids = [c.req.param("id")!];
      c.executionCtx.waitUntil(Promise.all([purgeEventLogs(c.env, ids), purgeEndpoints(c.env, endpoints.map((e) => e.id)), purgeAccessLogs(c.env, ids)]));
    }
  });
}
app.delete("/v1/tenants/:id", requireAdmin, async (c, next) => {
  // Read before the D1 delete cascades them away; only for the operator (requireAdmin first).
  const locations = await tenantDataLocations(c.env.DB, c.req.param("id"));
  // A webhook configuration's own trigger events live in an endpoint object of their own.
  const configEndpoints = (await configIdsOfTenant(c.env.DB, c.req.param("id"))).map(configEndpointId);
  await next();
  if (!c.res.ok) return;
  c.executionCtx.waitUntil(
    Promise.all([
      purgeEventLogs(c.env, locations.integrationIds),
      purgeEndpoints(c.env, [...locations.endpointIds, ...configEndpoints]),
      purgeEntityStores(c.env, c.req.param("id"), locations.schemas),
      purgeAccessLogs(c.env, locations.integrationIds),
    ]),
  );
});

app.route("/", tenantRoutes);
// Before integrationRoutes: /v1/integrations/secure-proxies is not /v1/integrations/{id}.
app.route("/", managedCallRoutes);
app.route("/", integrationRoutes);
app.route("/", mappingRoutes);
app.route("/", inboundRoutes);
app.route("/", entityRoutes);
app.route("/", outboundRoutes);
app.route("/", monitoringRoutes);
app.route("/", registryRoutes);
app.route("/", marketplaceRoutes);
app.route("/", appRoutes);
app.route("/", fileProxyRoutes);
app.route("/", webhookConfigRoutes);
app.route("/", typeGenerationRoutes);
app.route("/", hubRoutes);

app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
  type: "http",
  scheme: "bearer",
  description: "The operator's ADMIN_TOKEN (see .dev.vars locally)",
});
app.openAPIRegistry.registerComponent("securitySchemes", "tenantToken", {
  type: "http",
  scheme: "bearer",
  bearerFormat: "JWT",
  description: "A tenant API token from POST /v1/tenants/{id}/tokens",
});
app.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "erp-edge API",
    version: VERSION,
    description: "ERP integration platform on Cloudflare's edge. Errors always use the envelope `{ code, message, error: { code, message, details } }` (`code` and `message` at the top as in epilot's APIs).",
  },
});
app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "erp-edge API reference" }));

app.notFound((c) => errorResponse(c, new AppError("NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`)));
app.onError(onError);

export { AccessLog } from "./monitoring/access-log-do";
export { AppState } from "./apps/state-do";
export { EntityStore } from "./entities/store-do";
export { EventLog } from "./inbound/log-do";
export { FileProxyTokens } from "./file-proxy/tokens-do";
export { OutboundEndpoint } from "./outbound/endpoint-do";
export { RateLimiter } from "./platform/rate-limiter-do";

/**
 * Records each core event the queue gave up on, each event of a pack on its own (as message
 * `<message id>/<index>`); a message that cannot be recorded now is retried.
 */
async function recordDeadLetters(batch: MessageBatch<unknown>, env: Env) {
  for (const message of batch.messages) {
    const events = eventsOfMessage(message.body);
    const packed = !(events.length === 1 && events[0] === message.body);
    try {
      for (const [i, event] of events.entries()) {
        const body = event as Partial<CoreEventEnvelope> | null;
        const id = packed ? `${message.id}/${i}` : message.id;
        console.error(
          JSON.stringify({ level: "error", message: "core event dead-lettered by the queue", queue: batch.queue, message_id: id, tenant_id: body?._org_id, event_id: body?._event_id, event_name: body?._event_name }),
        );
        await recordDeadCoreEvent(env.DB, { queue: batch.queue, id, attempts: message.attempts, body: event });
      }
      message.ack();
    } catch (err) {
      console.error(JSON.stringify({ level: "error", message: "dead-lettered core event not recorded; retrying", message_id: message.id, error: String((err as Error)?.message ?? err) }));
      message.retry({ delaySeconds: Math.min(300, 2 ** message.attempts) });
    }
  }
}

export default {
  fetch: app.fetch,
  /**
   * Core events (entity changes, business events) fan out to outbound use cases. A message holds
   * one event or a pack of them (CoreEventPack). Each event's deliveries are prepared on its own: an
   * event whose body cannot even be read (it can never succeed) is logged and skipped, so it cannot
   * make the rest of its batch, other tenants' events among them, retry or be dropped. The prepared
   * deliveries of the whole batch are written together; when that write fails, each event's are
   * written on its own (fanOutMany), and only a message with an event that failed is retried. A pack
   * is retried whole: its events that had fanned out create nothing twice, since endpoints keep one
   * delivery per event. What fails max_retries times goes to the dead-letter queue, whose events are
   * recorded in D1 (core_event_dead_letters) and logged.
   */
  async queue(batch, env) {
    configureMapping(env);
    if (batch.queue === CORE_EVENTS_DLQ) return recordDeadLetters(batch, env);
    const readable: { message: Message<CoreEventMessage>; events: CoreEventEnvelope[] }[] = [];
    for (const message of batch.messages) {
      const events: CoreEventEnvelope[] = [];
      try {
        // Reading the body can throw (a message too deep to deserialise): that message alone is dropped.
        for (const event of eventsOfMessage(message.body)) {
          if (typeof (event as Partial<CoreEventEnvelope> | null)?._org_id === "string") events.push(event as CoreEventEnvelope);
          else console.error(JSON.stringify({ level: "error", message: "unreadable core event dropped", message_id: message.id, error: "event has no _org_id" }));
        }
      } catch (err) {
        console.error(JSON.stringify({ level: "error", message: "unreadable core event dropped", message_id: message.id, error: String((err as Error)?.message ?? err) }));
      }
      if (events.length > 0) readable.push({ message, events });
      else message.ack();
    }
    const retry = (message: Message<CoreEventMessage>, event: CoreEventEnvelope, err: unknown) => {
      console.error(JSON.stringify({ level: "error", message: "fan-out failed", message_id: message.id, event_id: event._event_id, attempts: message.attempts, error: String((err as Error)?.message ?? err) }));
      message.retry({ delaySeconds: Math.min(300, 2 ** message.attempts) });
    };
    try {
      // The batch's deliveries are written together; an event that cannot be fanned out fails alone.
      const { failed } = await fanOutMany(env, readable.flatMap((r) => r.events));
      crashPoint("queue.after-fan-out");
      for (const { message, events } of readable) {
        const failing = events.find((e) => failed.has(e));
        if (failing) retry(message, failing, failed.get(failing));
        else message.ack();
      }
    } catch (err) {
      for (const { message, events } of readable) retry(message, events[0]!, err);
    }
  },
  /**
   * Every minute: run due pulls, recover un-queued events, time out ACKs, apply retention. Each job runs to the end
   * even if another fails; every failure is logged, and any failure fails the cron invocation so the
   * platform's cron metrics show it (a job hidden in waitUntil would fail unseen).
   */
  async scheduled(_controller, env) {
    configureMapping(env);
    const jobs = { run_due_pulls: runDuePulls(env), sweep_ack_timeouts: sweepAckTimeouts(env), apply_retention: applyRetention(env), expire_app_runs: deleteExpiredRuns(env.DB) };
    const outcomes = await Promise.allSettled(Object.values(jobs));
    const failed = Object.keys(jobs).filter((_, i) => outcomes[i]!.status === "rejected");
    for (const [i, name] of Object.keys(jobs).entries()) {
      const outcome = outcomes[i]!;
      if (outcome.status === "rejected") console.error(JSON.stringify({ level: "error", message: "scheduled job failed", job: name, error: String((outcome.reason as Error)?.message ?? outcome.reason) }));
    }
    if (failed.length > 0) throw new Error(`scheduled jobs failed: ${failed.join(", ")}`);
  },
} satisfies ExportedHandler<Env, CoreEventMessage>;
