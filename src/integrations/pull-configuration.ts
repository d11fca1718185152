// The configuration of a `pull` use case (run by inbound/pull.ts): an app action run on a schedule whose returned events enter
// the inbound pipeline through another use case (the seeds' pull / delta-sync pattern, no middleware).
import { z } from "@hono/zod-openapi";
import { Cron } from "croner";
import { AppActionRef } from "../platform/app-ref";

/** The shortest interval a schedule may have: the Worker's cron trigger runs once a minute. */
export const MIN_PULL_INTERVAL_MS = 60_000;

/** The next time `schedule` is due after `from`, or null when it never is. */
export function nextRun(schedule: string, from: Date): Date | null {
  return new Cron(schedule, { timezone: "UTC", paused: true }).nextRun(from);
}

export const PullConfiguration = AppActionRef.extend({
  schedule: z
    .string()
    .min(9)
    .max(120)
    .superRefine((schedule, ctx) => {
      let next: Date | null;
      try {
        next = nextRun(schedule, new Date());
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `not a cron expression: ${(err as Error).message}` });
        return;
      }
      if (!next) ctx.addIssue({ code: "custom", message: "the schedule never runs" });
      else if (/^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+/.test(schedule.trim())) ctx.addIssue({ code: "custom", message: "five fields (minute hour day month weekday); seconds are not supported" });
    })
    .openapi({ description: "Five-field cron in UTC ('*/15 * * * *'); runs at most once a minute", example: "*/15 * * * *" }),
  target_use_case: z.string().max(128).regex(/^[a-z0-9][a-z0-9_-]*$/).openapi({ description: "The slug of the inbound use case (same integration) the pulled events go to" }),
  input: z.record(z.string().max(128), z.unknown()).default({}).openapi({ description: "Passed to the action as its input, beside nothing else: the cursor lives in ctx.state" }),
})
  .strict()
  .openapi("PullConfiguration");
export type PullConfiguration = z.infer<typeof PullConfiguration>;

/**
 * Why `target` cannot receive a pull's events among its integration's use cases, or null: it must be
 * an inbound use case of the same integration (whether it is enabled is checked when the pull runs).
 */
export function pullTargetProblem(target: string, useCases: readonly { slug: string; type: string }[]): string | null {
  const uc = useCases.find((u) => u.slug === target);
  if (!uc) return `no use case '${target}' in this integration; a pull's events enter through one of its inbound use cases`;
  if (uc.type !== "inbound") return `'${target}' is a ${uc.type} use case; a pull's events enter through an inbound one`;
  return null;
}
