// Scheduled pulls: a `pull` use case runs its app action on a cron schedule (or now, on request); the
// events it returns enter the inbound pipeline through the target use case exactly like posted events
// (deduplication, ordering, monitoring), and the run's ctx.state writes (its cursor) are committed only
// once those events are stored. A crash in between re-reads the old cursor and the repeats are dropped
// by their deduplication_id.
import { z } from "@hono/zod-openapi";
import { acceptEvents, NOT_STORED } from "./service";
import { getIntegration, integrationForEvents, tenantIntegrationIds } from "../integrations/service";
import type { Integration, UseCase } from "../integrations/schema";
import type { TriggerErpActionRequest, TriggerWebhookResp } from "./schema";
import { AppError, zodIssues } from "../platform/errors";
import { nowIso } from "../platform/ids";
import { nextRun, PullConfiguration } from "../integrations/pull-configuration";
import { runError, runInstalled, type AppsEnv } from "../apps/service";

export type PullEnv = AppsEnv & Pick<Env, "EVENT_LOG"> & Partial<Pick<Env, "EVENT_MAX_FUTURE_SKEW_SECONDS" | "EVENT_LOG_SHARDS">>;

/** Events one run may return (each still validated on its own, like a posted batch's). */
export const MAX_PULLED_EVENTS = 1000;
const BATCH = 100;
/** How long a claimed pull is considered running before another tick may take it again. */
const LEASE_MS = 5 * 60_000;
/** Due pulls started per cron tick. */
export const PULLS_PER_TICK = 20;
export const PULLS_PER_TENANT_PER_TICK = 3;

const PullOutput = z.object({ events: z.array(z.unknown()).max(MAX_PULLED_EVENTS) }).loose();

export const PullRunResult = z
  .object({
    run_id: z.string(),
    use_case_slug: z.string(),
    target_use_case: z.string(),
    events: z.object({ received: z.number(), accepted: z.number(), refused: z.number() }),
    results: z.array(z.object({ event_id: z.string(), status: z.string(), message: z.string() })).openapi({ description: "Per event, as POST /v3/erp/updates/events answers" }),
    logs: z.array(z.object({ level: z.string(), message: z.string() })),
    duration_ms: z.number(),
  })
  .openapi("PullRunResult");
export type PullRunResult = z.infer<typeof PullRunResult>;

/** Runs one pull use case now; AppError for a setup problem or a failed run (its classified error). */
export async function runPull(env: PullEnv, tenantId: string, integrationId: string, slug: string): Promise<PullRunResult> {
  const integration = await getIntegration(env.DB, tenantId, integrationId);
  const useCase = integration.use_cases.find((u) => u.slug === slug);
  if (!useCase) throw new AppError("NOT_FOUND", `No use case '${slug}' in integration ${integrationId}`);
  return runPullUseCase(env, tenantId, integration, useCase);
}

/** Runs one of an integration's use cases as a pull (UNPROCESSABLE when it is not one). */
async function runPullUseCase(env: PullEnv, tenantId: string, integration: Integration, useCase: UseCase): Promise<PullRunResult> {
  const integrationId = integration.id;
  const slug = useCase.slug ?? useCase.id;
  if (useCase.type !== "pull") throw new AppError("UNPROCESSABLE", `Use case '${slug}' is ${useCase.type}, not pull`);
  const parsed = PullConfiguration.safeParse(useCase.configuration);
  // Saved before a check that now refuses it: the operator must save it again, nothing runs.
  if (!parsed.success) throw new AppError("UNPROCESSABLE", `The stored configuration of '${slug}' no longer validates; save it again`, zodIssues(parsed.error));
  const config = parsed.data;
  const target = integration.use_cases.find((u) => u.slug === config.target_use_case);
  if (!target || target.type !== "inbound" || !target.enabled) {
    throw new AppError("UNPROCESSABLE", `The target use case '${config.target_use_case}' is not an enabled inbound use case of this integration`, { path: "configuration.target_use_case" });
  }
  const run = await runInstalled(env, tenantId, config.app, config.action, config.input, { trigger: "pull", integration_id: integrationId, buffer_state: true });
  if (!run.result.ok) throw runError(run.result, run.run_id);
  const output = PullOutput.safeParse(run.result.output);
  if (!output.success) {
    throw new AppError("APP_OUTPUT_INVALID", `A pull action returns { events: [...] } with at most ${MAX_PULLED_EVENTS} events`, { run_id: run.run_id });
  }
  // The target is the use case's, whatever an event says: a pull cannot feed another use case.
  const events = output.data.events.map((e) => (e && typeof e === "object" && !Array.isArray(e) ? { ...e, use_case_slug: config.target_use_case, event_name: undefined } : e));
  const results: PullRunResult["results"] = [];
  for (let i = 0; i < events.length; i += BATCH) {
    const batch = await acceptEvents(env, tenantId, { integration_id: integrationId, events: events.slice(i, i + BATCH) });
    results.push(...batch.results);
  }
  // Only now is the cursor moved, and only if everything it points past is stored: an event a log
  // shard refused would otherwise never be fetched again (the stored ones are deduplicated next run).
  if (results.some((r) => r.message === NOT_STORED)) {
    throw new AppError("INTERNAL", "The event log refused some of this run's events; the pull's state was not saved, so the next run fetches them again", { run_id: run.run_id });
  }
  const refusal = await run.state.commit();
  if (refusal) throw new AppError("APP_LIMIT_EXCEEDED", `the pull's state could not be saved: ${refusal.error}`, { run_id: run.run_id, limit: "state" });
  const accepted = results.filter((r) => r.status === "success").length;
  return {
    run_id: run.run_id,
    use_case_slug: slug,
    target_use_case: config.target_use_case,
    events: { received: events.length, accepted, refused: results.length - accepted },
    results,
    logs: run.result.logs,
    duration_ms: run.result.duration_ms,
  };
}

/**
 * POST /v1/erp/trigger whose `webhook_id` names no webhook configuration (outbound's triggerErp
 * tries that first): an erp-edge extension where it names a pull use case of the caller's (by id),
 * which runs now as POST /v1/integrations/{id}/use-cases/{slug}/run runs it;
 * the answer is epilot's TriggerWebhookResp. A run that fails (the app threw, returned junk, the log
 * refused events) answers `status: "failed"` with its code: the trigger reached the ERP side, it is
 * the run that failed. What cannot run at all (no such use case, another org, not a pull) is a 400.
 */
export async function triggerPull(env: PullEnv, tenantId: string, request: TriggerErpActionRequest): Promise<TriggerWebhookResp> {
  const invalid = (path: string, message: string) => new AppError("BAD_REQUEST", message, { path });
  if (request.org_id !== tenantId) throw invalid("org_id", "org_id is not the caller's organisation (its tenant id)");
  let target: { integration: Integration; useCase: UseCase } | undefined;
  for (const integrationId of await tenantIntegrationIds(env.DB, tenantId)) {
    const integration = await integrationForEvents(env.DB, tenantId, integrationId);
    const useCase = integration.use_cases.find((u) => u.id === request.webhook_id);
    if (useCase) {
      if (useCase.type !== "pull") throw invalid("webhook_id", `Use case '${request.webhook_id}' is ${useCase.type}; only a pull use case can be triggered`);
      if (!useCase.enabled) throw invalid("webhook_id", `Use case '${request.webhook_id}' is disabled`);
      target = { integration, useCase };
      break;
    }
  }
  if (!target) throw invalid("webhook_id", `No use case '${request.webhook_id}' to trigger`);
  const start = nowIso();
  try {
    const run = await runPullUseCase(env, tenantId, target.integration, target.useCase);
    return {
      status: "succeeded",
      status_code: "200",
      message: `Pulled ${run.events.received} events: ${run.events.accepted} accepted, ${run.events.refused} refused`,
      body: run,
      start_date: start,
      end_date: nowIso(),
      event_id: run.run_id,
    };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const details = (err.details ?? {}) as { run_id?: unknown };
    return {
      status: "failed",
      status_code: String(err.status),
      code: err.code,
      message: err.message,
      body: err.details !== undefined && typeof err.details === "object" ? (err.details as Record<string, unknown>) : {},
      start_date: start,
      end_date: nowIso(),
      event_id: typeof details.run_id === "string" ? details.run_id : request.execution_id,
    };
  }
}

interface ScheduleRow {
  id: string;
  tenant_id: string;
  integration_id: string;
  slug: string;
  configuration: string;
  next_run_at: string | null;
  lease_until: string | null;
}

/**
 * The cron tick: gives new pull use cases their first due time, and runs those that are due (at
 * most PULLS_PER_TICK, each claimed with a lease so overlapping ticks never run one twice). A failed
 * pull is recorded on its schedule and in the app's runs; it runs again at its next due time.
 */
export async function runDuePulls(env: PullEnv, now = new Date()): Promise<number> {
  const at = now.toISOString();
  // At most PULLS_PER_TENANT_PER_TICK of each tenant's due pulls, so one tenant with many cannot
  // delay everyone else's.
  const { results } = await env.DB.prepare(
    `SELECT id, tenant_id, integration_id, slug, configuration, next_run_at, lease_until FROM (
       SELECT u.id, u.tenant_id, u.integration_id, u.slug, u.configuration, s.next_run_at, s.lease_until,
              ROW_NUMBER() OVER (PARTITION BY u.tenant_id ORDER BY s.next_run_at) AS n
       FROM use_cases u LEFT JOIN pull_schedules s ON s.use_case_id = u.id
       WHERE u.type = 'pull' AND u.enabled = 1 AND (s.use_case_id IS NULL OR (s.next_run_at <= ?1 AND (s.lease_until IS NULL OR s.lease_until < ?1))))
     WHERE n <= ?3 ORDER BY next_run_at LIMIT ?2`,
  )
    .bind(at, PULLS_PER_TICK, PULLS_PER_TENANT_PER_TICK)
    .all<ScheduleRow>();
  const due: ScheduleRow[] = [];
  for (const row of results) {
    const config = PullConfiguration.safeParse(JSON.parse(row.configuration));
    const next = config.success ? nextRun(config.data.schedule, now) : null;
    if (!next) continue;
    if (row.next_run_at === null) {
      await env.DB.prepare("INSERT OR IGNORE INTO pull_schedules (use_case_id, tenant_id, integration_id, next_run_at) VALUES (?, ?, ?, ?)")
        .bind(row.id, row.tenant_id, row.integration_id, next.toISOString())
        .run();
      continue;
    }
    const claimed = await env.DB.prepare("UPDATE pull_schedules SET next_run_at = ?, lease_until = ? WHERE use_case_id = ? AND next_run_at = ?")
      .bind(next.toISOString(), new Date(now.getTime() + LEASE_MS).toISOString(), row.id, row.next_run_at)
      .run();
    if (claimed.meta.changes === 1) due.push(row);
  }
  await Promise.allSettled(
    due.map(async (row) => {
      let outcome = "ok";
      try {
        await runPull(env, row.tenant_id, row.integration_id, row.slug);
      } catch (err) {
        outcome = err instanceof AppError ? `${err.code}: ${err.message}`.slice(0, 500) : "system error";
        if (!(err instanceof AppError)) console.error(JSON.stringify({ level: "error", message: "pull failed", use_case_id: row.id, error: String((err as Error)?.message ?? err) }));
      }
      await env.DB.prepare("UPDATE pull_schedules SET lease_until = NULL, last_run_at = ?, last_outcome = ? WHERE use_case_id = ?").bind(nowIso(), outcome, row.id).run();
    }),
  );
  return due.length;
}

