// Core entity schemas: the standard targets of mappings (energy core entities and the telematics set
// from the telematics blueprint), used to warn about mappings that do not fit them.
import { isRecord } from "../platform/json";

export type AttributeType = "string" | "number" | "boolean" | "date" | "email" | "phone" | "address" | "relation" | "array" | "object";

export interface EntitySchema {
  /** Attributes that identify an entity; mappings should match on these. */
  indexed: string[];
  attributes: Record<string, AttributeType>;
}

const s = (indexed: string[], attributes: Record<string, AttributeType>): EntitySchema => ({ indexed, attributes });

export const CORE_SCHEMAS: Record<string, EntitySchema> = {
  contact: s(["external_id", "customer_number", "email"], {
    external_id: "string", customer_number: "string", salutation: "string", title: "string", first_name: "string",
    last_name: "string", full_name: "string", company_name: "string", customer_type: "string", tax_id: "string",
    status: "string", birthdate: "date", email: "email", phone: "phone", address: "address", account: "relation",
    contracts: "relation", payment: "array",
  }),
  account: s(["external_id", "customer_number", "tax_id"], {
    external_id: "string", customer_number: "string", name: "string", tax_id: "string", website: "string",
    industry: "array", company_size: "string", email: "email", phone: "phone", address: "address", payment: "array",
    contacts: "relation", contracts: "relation",
  }),
  contract: s(["external_id", "contract_number"], {
    external_id: "string", contract_number: "string", contract_name: "string", contract_type: "string", status: "string",
    contract_start_date: "date", contract_end_date: "date", termination_date: "date", billing_period: "string",
    payment_method: "string", tariff_name: "string", price_per_unit: "string", base_fee: "string", currency: "string",
    delivery_address: "object", description: "string", customer: "relation", billing_account: "relation", meters: "relation",
  }),
  billing_account: s(["external_id", "billing_account_number"], {
    external_id: "string", billing_account_number: "string", billing_address: "object", payment_method: "array",
    balance: "number", billing_contact: "relation", contract: "relation",
  }),
  meter: s(["external_id", "meter_number", "ma_lo_id"], {
    external_id: "string", meter_number: "string", ma_lo_id: "string", meter_type: "string", sector: "string",
    manufacturer: "string", model: "string", installation_date: "date", location: "string", customer: "relation",
    contract: "relation", counters: "relation",
  }),
  meter_counter: s(["external_id", "counter_number"], {
    external_id: "string", counter_number: "string", counter_type: "string", tariff_type: "string", unit: "string",
    direction: "string", conversion_factor: "number", meter: "relation",
  }),
  file: s(["external_id"], {
    external_id: "string", filename: "string", mime_type: "string", size_bytes: "number", document_type: "string",
    custom_download_url: "string", _tags: "array", related: "relation",
  }),
  order: s(["external_id", "order_number"], {
    external_id: "string", order_number: "string", order_date: "date", status: "string", total_amount: "string",
    total_amount_decimal: "string", total_amount_currency: "string", delivery_date: "date", shipping_address: "address",
    order_items: "array", item_count: "number", customer: "relation",
  }),
  // Telematics (vehicle_id, VIN; driver_id, national id; trip_id, ERP order_id; fuel_txn_id; work_order_id).
  vehicle: s(["vehicle_id", "vin", "external_id"], {
    vehicle_id: "string", vin: "string", external_id: "string", registration: "string", make: "string", model: "string",
    status: "string", latitude: "number", longitude: "number", speed_kmh: "number", odometer_km: "number",
    last_position_at: "date", customer: "relation",
  }),
  driver: s(["driver_id", "national_id", "external_id"], {
    driver_id: "string", national_id: "string", external_id: "string", full_name: "string", email: "email",
    phone: "phone", license_number: "string", status: "string", vehicle: "relation",
  }),
  trip: s(["trip_id", "order_id", "external_id"], {
    trip_id: "string", order_id: "string", external_id: "string", status: "string", site_id: "string",
    started_at: "date", ended_at: "date", status_changed_at: "date", distance_km: "number", vehicle: "relation",
    driver: "relation", customer: "relation",
  }),
  fuel_transaction: s(["fuel_txn_id", "external_id"], {
    fuel_txn_id: "string", external_id: "string", liters: "number", amount: "number", currency: "string",
    transaction_at: "date", station: "string", fuel_card: "string", vehicle: "relation", driver: "relation",
  }),
  work_order: s(["work_order_id", "external_id"], {
    work_order_id: "string", external_id: "string", task: "string", status: "string", due_date: "date",
    meter_reading: "number", completed_at: "date", vehicle: "relation",
  }),
  geofence_event: s(["event_id", "external_id"], {
    event_id: "string", external_id: "string", geofence_id: "string", transition: "string", occurred_at: "date",
    dwell_seconds: "number", vehicle: "relation", trip: "relation",
  }),
};

const DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const listOf = (v: unknown, key?: string) => {
  const items = isRecord(v) && Array.isArray(v._append ?? v._append_all) ? ((v._append ?? v._append_all) as unknown[]) : v;
  return Array.isArray(items) && items.every((i) => isRecord(i) && (key === undefined || key in i));
};

/** Whether a mapped value fits an attribute type (attribute operations like `_append` included). */
export function fitsType(type: AttributeType, value: unknown): boolean {
  if (value === null) return true;
  switch (type) {
    case "string": return typeof value === "string";
    case "number": return typeof value === "number" || (typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value)));
    case "boolean": return typeof value === "boolean";
    case "date": return typeof value === "string" && DATE.test(value);
    case "email": return listOf(value, "email");
    case "phone": return listOf(value, "phone");
    case "address": return listOf(value) || isRecord(value);
    case "relation": return isRecord(value) && "$relation" in value;
    case "array": return Array.isArray(value) || listOf(value);
    case "object": return isRecord(value);
  }
}

export interface SchemaWarning {
  code: "UNKNOWN_SCHEMA" | "UNIQUE_ID_NOT_INDEXED" | "WRONG_TYPE";
  message: string;
  attribute?: string;
}

/** Problems of one mapped entity against its core schema; an empty list when it fits. */
export function checkAgainstSchema(schemaSlug: string, uniqueIds: string[], attributes: Record<string, unknown>): SchemaWarning[] {
  const schema = CORE_SCHEMAS[schemaSlug];
  if (!schema) return [{ code: "UNKNOWN_SCHEMA", message: `'${schemaSlug}' is not a core entity schema` }];
  const warnings: SchemaWarning[] = [];
  for (const id of uniqueIds) {
    if (!schema.indexed.includes(id)) {
      warnings.push({ code: "UNIQUE_ID_NOT_INDEXED", attribute: id, message: `'${schemaSlug}.${id}' is not an indexed attribute (indexed: ${schema.indexed.join(", ")})` });
    }
  }
  for (const [attribute, value] of Object.entries(attributes)) {
    const type = schema.attributes[attribute];
    if (type && !fitsType(type, value)) {
      warnings.push({ code: "WRONG_TYPE", attribute, message: `'${schemaSlug}.${attribute}' expects ${type}, got ${JSON.stringify(value)?.slice(0, 80)}` });
    }
  }
  return warnings;
}
