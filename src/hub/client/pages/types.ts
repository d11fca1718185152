// The API's shapes the Hub's pages read (a subset of the OpenAPI document's schemas at /openapi.json).

export interface EnvironmentEntry {
  key: string;
  label: string;
  type: "String" | "SecretString";
  required: boolean;
  description?: string;
}

export interface UseCase {
  id: string;
  integrationId: string;
  name: string;
  slug: string;
  type: string;
  enabled: boolean;
  configuration: Record<string, unknown>;
  change_description?: string;
  created_at: string;
  updated_at: string;
}

export interface Integration {
  id: string;
  name: string;
  description?: string;
  environment_config: EnvironmentEntry[];
  settings: { redact_paths: string[]; retention_days: number };
  use_cases: UseCase[];
  created_at: string;
  updated_at: string;
}

export interface HistoryEntry {
  id: string;
  action: "created" | "updated" | "deleted";
  changed_by: string;
  changed_at: string;
  change_description?: string;
  enabled: boolean;
  configuration?: unknown;
  snapshot?: UseCase;
}

/** POST /v2/erp/updates/mapping_simulation's answer. */
export interface SimulationResult {
  entity_updates: { entity_slug: string; unique_identifiers: Record<string, unknown>; attributes: Record<string, unknown>; mode: string }[];
  meter_readings_updates: { meter: unknown; meter_counter?: unknown; attributes: Record<string, unknown>; mode: string }[];
  warnings: unknown[];
}
