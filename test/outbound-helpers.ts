// Reading outbound deliveries where they live: in the OutboundEndpoint object of each mapping,
// found through the endpoint directory (D1's outbound_endpoints).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { DeliveryRow } from "../src/outbound/deliveries-log";
import type { OutboundEndpoint } from "../src/outbound/endpoint-do";
import { endpointObject, endpointsOfIntegrations } from "../src/outbound/service";

/** The endpoint object of one mapping ("<use_case_id>/<mapping_id>"). */
export const endpointOf = (endpointId: string) => endpointObject(env, endpointId);

/** Every delivery of some integrations (all endpoints), oldest first. */
export async function deliveryRows(...integrationIds: string[]): Promise<DeliveryRow[]> {
  const endpoints = await endpointsOfIntegrations(env.DB, integrationIds);
  const rows = await Promise.all(endpoints.map((e) => endpointOf(e.id).rows()));
  return rows.flat().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Runs SQL in one endpoint's own SQLite (to arrange a state or inject a fault). */
export async function endpointQuery<T extends Record<string, SqlStorageValue>>(endpointId: string, sql: string, ...params: unknown[]): Promise<T[]> {
  return runInDurableObject(endpointOf(endpointId) as DurableObjectStub<OutboundEndpoint>, (_instance, state) => state.storage.sql.exec<T>(sql, ...params).toArray());
}
