// Which publishers' packages (blueprints and apps) a tenant installs: the platform's own always, others
// once the tenant trusts them (PUT /v1/blueprints/trust, stored by the marketplace in blueprint_trust).
import { AppError } from "../platform/errors";
import { publisherOf } from "./verify";

/** The publisher of the prebuilt blueprints and apps: always trusted, cannot be removed. */
export const PLATFORM_PUBLISHER = "@erp-edge";

/** 403 unless the tenant trusts the publisher of package `name`. */
export async function assertTrusted(db: D1Database, tenantId: string, name: string) {
  const publisher = publisherOf(name);
  if (publisher === PLATFORM_PUBLISHER) return;
  const row = await db.prepare("SELECT 1 FROM blueprint_trust WHERE tenant_id = ? AND publisher = ?").bind(tenantId, publisher).first();
  if (!row) {
    throw new AppError("FORBIDDEN", `Publisher '${publisher}' is not trusted by this tenant; add it with PUT /v1/blueprints/trust to install its packages`, {
      publisher,
      trust: { method: "PUT", path: "/v1/blueprints/trust", body: { publishers: [publisher] }, note: "the body replaces the list: include the publishers already trusted (GET /v1/blueprints/trust)" },
    });
  }
}
