// Type generation (epilot's generateTypesPreview, generateTypes, commitTypes): TypeScript declarations
// for what an integration's use cases exchange. Managed calls: the payload their request side reads
// and what their response_mapping builds. Inbound use cases: the payload their mappings read and the
// entity attributes they write, per entity schema. Outbound use cases: the event fields they read and
// the payload each mapping sends. Preview and generate store nothing; commit records the package.
import { auditStatement } from "../platform/audit";
import { atomically } from "../platform/db";
import { AppError } from "../platform/errors";
import { newUuid, nowIso } from "../platform/ids";
import { getIntegration } from "../integrations/service";
import type { Integration } from "../integrations/schema";
import { InboundConfiguration } from "../mapping/schema";
import { OutboundConfiguration } from "../integrations/outbound-configuration";
import { ManagedCallConfiguration } from "../managed-calls/configuration";
import { InputShape, leaves, mappedAttributeShape, objectOf, outputShape, type TypeDescriptor } from "./shapes";
import { declaration, pascalName, propertyName } from "./typescript";
import type { CommitTypesRequest, CommitTypesResponse, DetectedChange, GenerateTypesPreviewResponse, GenerateTypesRequest, GenerateTypesResponse, TypeAnnotations, UseCaseTypePreview } from "./schema";

type StoredUseCase = { id: string; name: string; slug?: string; type: string; enabled: boolean; configuration?: unknown; type_annotations?: TypeAnnotations };

interface Typed {
  previews: UseCaseTypePreview[];
  /** Attributes written per entity schema, across the inbound use cases. */
  entities: Map<string, Map<string, TypeDescriptor>>;
  warnings: string[];
}

/** The previews of every use case that has types: managed calls, inbound and outbound, in the integration's order. */
function typedUseCases(integration: Integration): Typed {
  const previews: UseCaseTypePreview[] = [];
  const entities = new Map<string, Map<string, TypeDescriptor>>();
  const warnings: string[] = [];
  for (const uc of integration.use_cases as unknown as StoredUseCase[]) {
    const slug = uc.slug ?? uc.id;
    const request = new InputShape();
    let response: TypeDescriptor;
    if (uc.type === "managed_call") {
      const parsed = ManagedCallConfiguration.safeParse(uc.configuration);
      if (!parsed.success) {
        warnings.push(`use case '${slug}': its configuration does not validate; no types generated for it`);
        continue;
      }
      const { operation, request_mapping, response_mapping } = parsed.data;
      for (const template of [operation.path, ...Object.values(operation.headers ?? {}), ...Object.values(operation.query_params ?? {})]) request.addTemplate(template);
      request.addExpression(request_mapping);
      response = outputShape(response_mapping);
    } else if (uc.type === "inbound") {
      const parsed = InboundConfiguration.safeParse(uc.configuration);
      if (!parsed.success) {
        warnings.push(`use case '${slug}': its configuration does not validate; no types generated for it`);
        continue;
      }
      const written: [string, TypeDescriptor][] = [];
      for (const entity of parsed.data.entities) {
        // With a pre-processing expression the fields read its output, not the payload.
        if (entity.jsonataExpression) request.addExpression(entity.jsonataExpression);
        const attributes = entities.get(entity.entity_schema) ?? new Map<string, TypeDescriptor>();
        for (const field of entity.fields) {
          if (!entity.jsonataExpression) {
            request.addField(field.field);
            request.addExpression(field.jsonataExpression);
          }
          if (!attributes.has(field.attribute)) attributes.set(field.attribute, mappedAttributeShape(entity.entity_schema, field.attribute, field));
        }
        entities.set(entity.entity_schema, attributes);
        if (!written.some(([schema]) => schema === entity.entity_schema)) written.push([entity.entity_schema, { kind: "unknown" }]);
      }
      response = objectOf(written.map(([schema]) => [schema, objectOf([...entities.get(schema)!])]));
    } else if (uc.type === "outbound") {
      const parsed = OutboundConfiguration.safeParse(uc.configuration);
      if (!parsed.success) {
        warnings.push(`use case '${slug}': its configuration does not validate; no types generated for it`);
        continue;
      }
      request.addExpression(parsed.data.event_filter);
      const mapped: [string, TypeDescriptor][] = [];
      parsed.data.mappings.forEach((m, i) => {
        request.addExpression(m.jsonata_expression);
        mapped.push([(m as { id?: string }).id ?? `mapping_${i}`, outputShape(m.jsonata_expression)]);
      });
      response = objectOf(mapped);
    } else continue;
    previews.push({
      slug,
      name: uc.name,
      request_shape: request.shape,
      response_shape: response,
      ...(uc.type_annotations && { existing_annotations: uc.type_annotations }),
    });
  }
  return { previews, entities, warnings };
}

interface CommitRow {
  package_name: string;
  version: string;
  shapes: string;
  committed_by: string;
  committed_at: string;
}

async function latestCommit(db: D1Database, integrationId: string): Promise<{ packageName: string; version: string; shapes: UseCaseTypePreview[] } | null> {
  const row = await db.prepare("SELECT package_name, version, shapes FROM integration_type_commits WHERE integration_id = ? ORDER BY id DESC LIMIT 1").bind(integrationId).first<CommitRow>();
  return row ? { packageName: row.package_name, version: row.version, shapes: JSON.parse(row.shapes) as UseCaseTypePreview[] } : null;
}

/** What changed between the committed previews and today's: removed fields or changed kinds break callers, added ones do not. */
function changes(before: UseCaseTypePreview[], after: UseCaseTypePreview[]): DetectedChange[] {
  const out: DetectedChange[] = [];
  const was = new Map(before.map((p) => [p.slug, p]));
  const is = new Map(after.map((p) => [p.slug, p]));
  for (const [slug] of was) if (!is.has(slug)) out.push({ slug, field: "*", type: "breaking", description: "use case removed" });
  for (const [slug, now] of is) {
    const old = was.get(slug);
    if (!old) {
      out.push({ slug, field: "*", type: "non-breaking", description: "use case added" });
      continue;
    }
    for (const side of ["request", "response"] as const) {
      const a = leaves(old[`${side}_shape`] as TypeDescriptor);
      const b = leaves(now[`${side}_shape`] as TypeDescriptor);
      for (const [path, kind] of a) {
        const field = `${side}.${path}`;
        if (!b.has(path)) out.push({ slug, field, type: "breaking", description: "field removed" });
        else if (b.get(path) !== kind) out.push({ slug, field, type: "breaking", description: `type changed from ${kind} to ${b.get(path)}` });
      }
      for (const path of b.keys()) if (!a.has(path)) out.push({ slug, field: `${side}.${path}`, type: "non-breaking", description: "field added" });
    }
  }
  return out;
}

function bump(version: string, kind: "major" | "minor"): string {
  const [major, minor] = version.split(/[.+-]/).map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return "1.0.0";
  return kind === "major" ? `${major! + 1}.0.0` : `${major}.${minor! + 1}.0`;
}

/** The scaffolded type descriptors of an integration's use cases, with what changed since the last commit. */
export async function previewTypes(db: D1Database, tenantId: string, integrationId: string): Promise<GenerateTypesPreviewResponse> {
  const integration = await getIntegration(db, tenantId, integrationId);
  const { previews } = typedUseCases(integration);
  const previous = await latestCommit(db, integrationId);
  if (!previous) return { integration_name: integration.name, use_cases: previews, suggested_version: "1.0.0" };
  const detected = changes(previous.shapes, previews);
  const kind = detected.some((c) => c.type === "breaking") ? "major" : "minor";
  return { integration_name: integration.name, use_cases: previews, previous_version: previous.version, suggested_version: bump(previous.version, kind), suggested_bump: kind, detected_changes: detected };
}

/**
 * The package's files: package.json and index.d.ts. Per use case `<Slug>Request` and
 * `<Slug>Response`; `EntitySchemas` with the attributes mapped per entity schema; `UseCaseMap`
 * naming each use case's pair (extending the domain map when one is given).
 */
function packageFiles(integration: Integration, typed: Typed, req: Pick<GenerateTypesRequest, "package_name" | "version" | "description" | "domain_package" | "domain_map_name" | "annotations">): { files: Record<string, string>; warnings: string[] } {
  const warnings = [...typed.warnings];
  const annotations = req.annotations ?? {};
  const names = new Set<string>(["EntitySchemas", "UseCaseMap"]);
  const parts: string[] = ["// Generated by erp-edge from the integration's mappings. Do not edit: generate again.\n"];
  if (req.domain_package && req.domain_map_name) parts.push(`import type { ${req.domain_map_name} } from ${JSON.stringify(req.domain_package)};\n`);
  const entries: string[] = [];
  for (const preview of typed.previews) {
    let base = pascalName(preview.slug, "UseCase");
    for (let n = 2; names.has(`${base}Request`) || names.has(`${base}Response`); n++) base = `${pascalName(preview.slug, "UseCase")}${n}`;
    names.add(`${base}Request`).add(`${base}Response`);
    const given = Object.hasOwn(annotations, preview.slug) ? annotations[preview.slug]! : preview.existing_annotations ?? {};
    for (const side of ["request", "response"] as const) {
      const used = new Set<string>();
      const map = given[side] ?? {};
      parts.push(declaration(`${base}${side === "request" ? "Request" : "Response"}`, preview[`${side}_shape`] as TypeDescriptor, map, used));
      for (const path of Object.keys(map)) if (!used.has(path)) warnings.push(`use case '${preview.slug}': ${side} annotation '${path}' matches no field`);
    }
    entries.push(`  ${propertyName(preview.slug)}: { request: ${base}Request; response: ${base}Response };`);
  }
  for (const slug of Object.keys(annotations)) if (!typed.previews.some((p) => p.slug === slug)) warnings.push(`annotations for '${slug}': no such use case with types`);
  const schemas = [...typed.entities].map(([schema, attributes]) => [schema, objectOf([...attributes])] as [string, TypeDescriptor]);
  parts.push(declaration("EntitySchemas", objectOf(schemas)));
  const extendsClause = req.domain_map_name ? ` extends ${req.domain_map_name}` : "";
  parts.push(entries.length ? `export interface UseCaseMap${extendsClause} {\n${entries.join("\n")}\n}\n` : `export interface UseCaseMap${extendsClause} {}\n`);
  if (typed.previews.length === 0) warnings.push("the integration has no managed_call, inbound or outbound use case to type");
  const pkg = {
    name: req.package_name,
    version: req.version,
    ...(req.description !== undefined && { description: req.description }),
    types: "index.d.ts",
    files: ["index.d.ts"],
    ...(req.domain_package && { peerDependencies: { [req.domain_package]: "*" } }),
    erpEdge: { integration_id: integration.id },
  };
  return { files: { "package.json": `${JSON.stringify(pkg, null, 2)}\n`, "index.d.ts": parts.join("\n") }, warnings };
}

/** The TypeScript package for an integration's use cases; stores nothing. */
export async function generateTypes(db: D1Database, tenantId: string, integrationId: string, req: GenerateTypesRequest): Promise<GenerateTypesResponse> {
  const integration = await getIntegration(db, tenantId, integrationId);
  const { files, warnings } = packageFiles(integration, typedUseCases(integration), req);
  return { package_name: req.package_name, version: req.version, files, ...(warnings.length > 0 && { warnings }) };
}

/** Committed versions one integration keeps (each holds its shapes: a hostile tenant must not fill D1). */
const MAX_COMMITS_PER_INTEGRATION = 200;

/**
 * Records a reviewed package: its name, version, annotations and the use cases' descriptors as they
 * are now (the next preview compares against them). A version is committed once per integration.
 */
export async function commitTypes(db: D1Database, changedBy: string, tenantId: string, integrationId: string, req: CommitTypesRequest): Promise<CommitTypesResponse> {
  const integration = await getIntegration(db, tenantId, integrationId);
  const typed = typedUseCases(integration);
  const { warnings } = packageFiles(integration, typed, req);
  const previous = await latestCommit(db, integrationId);
  if (previous && previous.packageName !== req.package_name) warnings.push(`the package was committed as '${previous.packageName}' before`);
  const { n } = (await db.prepare("SELECT COUNT(*) AS n FROM integration_type_commits WHERE integration_id = ?").bind(integrationId).first<{ n: number }>())!;
  if (n >= MAX_COMMITS_PER_INTEGRATION) throw new AppError("CONFLICT", `An integration keeps at most ${MAX_COMMITS_PER_INTEGRATION} committed type versions`);
  const at = nowIso();
  try {
    await atomically(db, [
      db
        .prepare("INSERT INTO integration_type_commits (id, tenant_id, integration_id, package_name, version, annotations, shapes, committed_by, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(newUuid(), tenantId, integrationId, req.package_name, req.version, JSON.stringify(req.annotations ?? {}), JSON.stringify(typed.previews), changedBy, at),
      auditStatement(db, { tenantId, actor: changedBy, action: "types.committed", target: integrationId, details: { package_name: req.package_name, version: req.version } }),
    ]);
  } catch (err) {
    // A second commit of a version: epilot's operation answers 400 for it (it has no 409).
    if (err instanceof AppError && err.code === "CONFLICT") throw new AppError("BAD_REQUEST", `Version ${req.version} of the types was already committed for this integration`);
    throw err;
  }
  return { committed: true, ...(warnings.length > 0 && { warnings }) };
}

/**
 * The integration's committed type versions, newest first, as epilot's
 * connector_config.types_versions lists them (the newest active, earlier ones deprecated).
 */
export async function typeVersions(db: D1Database, integrationId: string): Promise<{ version: string; package_name: string; generated_at: string; generated_by: string; status: "active" | "deprecated" }[]> {
  const { results } = await db
    .prepare("SELECT package_name, version, committed_by, committed_at FROM integration_type_commits WHERE integration_id = ? ORDER BY id DESC LIMIT 1000")
    .bind(integrationId)
    .all<Omit<CommitRow, "shapes">>();
  return results.map((r, i) => ({ version: r.version, package_name: r.package_name, generated_at: r.committed_at, generated_by: r.committed_by, status: i === 0 ? "active" : "deprecated" }));
}
