// Set-up shared by the inbound tests: a tenant, an integration with inbound use cases, and posting.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { EventRow } from "../src/inbound/events-log";
import type { EventLog } from "../src/inbound/log-do";
import { eventLog, eventLogs, locate, shardCount, shardOf } from "../src/inbound/shards";
import { api, tenantWithToken } from "./helpers";

const examples = import.meta.glob<string>("../../shared/compat/epilot-mapping-examples/*.json", { eager: true, query: "?raw", import: "default" });
export const example = (name: string) => JSON.parse(examples[`../../shared/compat/epilot-mapping-examples/${name}.json`]!);

export const contactMapping = {
  event_names: ["ContactChanged"],
  entities: [
    {
      entity_schema: "contact",
      unique_ids: ["external_id"],
      fields: [
        { attribute: "external_id", field: "id" },
        { attribute: "full_name", field: "name" },
        { attribute: "_tags", jsonataExpression: "tag ? { '_append': [tag] } : undefined" },
        { attribute: "account", relations: { operation: "_set", items: [{ entity_schema: "account", unique_ids: [{ attribute: "customer_number", field: "account" }] }] } },
      ],
    },
  ],
};

export async function setup(useCases: Record<string, unknown>[] = [], environment: Record<string, string> = {}) {
  const { tenant, token } = await tenantWithToken();
  const res = await api("POST", "/v2/integrations", {
    token,
    json: {
      name: "ERP",
      environment_config: Object.keys(environment).map((key) => ({ key, label: key, type: "SecretString" })),
      use_cases: [
        { name: "Contacts", slug: "contacts", type: "inbound", configuration: contactMapping },
        { name: "Customers", slug: "customers", type: "inbound", configuration: { ...example("mapping.CustomerChanged"), event_names: ["CustomerChanged"] } },
        { name: "Contracts", slug: "contracts", type: "inbound", configuration: example("mapping.ContractChanged") },
        ...useCases,
      ],
    },
  });
  if (res.status !== 201) throw new Error(`integration: ${res.status} ${JSON.stringify(res.body)}`);
  if (Object.keys(environment).length) await api("PUT", `/v1/integrations/${res.body.id}/environment`, { token, json: environment });
  return { tenant, token, integrationId: res.body.id as string, useCases: res.body.use_cases as { id: string; slug: string }[] };
}

let clock = Date.parse("2026-01-01T00:00:00Z");
/** Strictly increasing ERP timestamps. */
export const nextTimestamp = () => new Date((clock += 1000)).toISOString();

export async function post(token: string, integrationId: string, events: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  const res = await api("POST", "/v3/erp/updates/events", {
    token,
    json: { integration_id: integrationId, ...extra, events: events.map((e) => ({ timestamp: nextTimestamp(), ...e })) },
  });
  if (res.status !== 200) throw new Error(`events: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.results as { event_id: string; status: string; message: string }[];
}

export async function waitFor(token: string, eventId: string) {
  const res = await api("GET", `/v3/erp/updates/events/${eventId}?wait=20`, { token });
  if (res.status !== 200) throw new Error(`status: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function findOne(token: string, schema: string, query: string) {
  const res = await api("GET", `/v1/entities/${schema}?${query}`, { token });
  if (res.status !== 200) throw new Error(`find: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.entities[0];
}

// ---- the event log (sharded EventLog Durable Objects, src/inbound/shards.ts) -------------------

/** The log shard that holds (or will hold) a group's events. */
export const logOf = (integrationId: string, groupId: string | null = null) => eventLog(env, integrationId, shardOf(groupId, shardCount(env)));

/** The log shard an event id names. */
export const logOfEvent = (integrationId: string, eventId: string) => eventLog(env, integrationId, locate(eventId)!.shard);

/** An event's stored row, as the log keeps it (null when there is none). */
export async function eventRow(integrationId: string, eventId: string): Promise<EventRow | null> {
  return logOfEvent(integrationId, eventId).event(eventId);
}

/** Runs SQL in every shard of an integration's log and concatenates the rows (tests' view of the whole log). */
export async function logQuery<T extends Record<string, SqlStorageValue>>(integrationId: string, sql: string, ...params: SqlStorageValue[]): Promise<T[]> {
  const rows: T[] = [];
  for (const log of eventLogs(env, integrationId)) {
    await runInDurableObject(log, (_instance: EventLog, state) => {
      rows.push(...state.storage.sql.exec<T>(sql, ...params).toArray());
    });
  }
  return rows;
}

/** Groups whose events share one log shard (found by name, so the test does not depend on the hash). */
export function groupsInOneShard(count: number, prefix: string): string[] {
  const shards = shardCount(env);
  const byShard = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const group = `${prefix}-${i}`;
    const list = byShard.get(shardOf(group, shards)) ?? [];
    list.push(group);
    byShard.set(shardOf(group, shards), list);
    if (list.length === count) return list;
  }
}
