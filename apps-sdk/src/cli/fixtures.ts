// Fixtures: test events of a blueprint and the entities they must produce (docs/cli.md, "Fixtures").
// `blueprint test` runs each through the host's own mapping engine and compares the result.
import { z } from "zod";
import { MappingError, runMapping, type MappingResult } from "../../../src/mapping/engine";
import { parsePayload, PayloadError } from "../../../src/mapping/payload";
import type { InboundConfiguration } from "../../../src/mapping/schema";
import { isFileReference, MANIFEST_FILE, PackageError, packagePathProblem, readJson, readText, type PackageFiles } from "../blueprint";
import type { CheckedUseCase, Issue, ManifestView } from "./check";
import { diffValues, type Difference } from "./diff";

const Slug = z.string().min(1).max(128).regex(/^[a-z0-9][a-z0-9_-]*$/, "a slug: lowercase letters, digits, '_' and '-'");
const Json = z.record(z.string(), z.unknown());

const ExpectedEntityUpdate = z
  .object({
    entity_slug: z.string().min(1),
    unique_identifiers: Json,
    attributes: Json,
    mode: z.enum(["upsert", "delete", "purge"]).default("upsert"),
  })
  .strict();

const ExpectedMeterReading = z
  .object({
    meter: Json,
    meter_counter: Json.optional(),
    attributes: Json,
    mode: z.enum(["upsert", "delete"]).default("upsert"),
  })
  .strict();

/** One fixture file: an event for one inbound use case and exactly what its mapping must produce. */
export const FixtureFile = z
  .object({
    $schema: z.string().optional(),
    description: z.string().max(1000).optional(),
    integration: Slug.optional().describe("The integration's slug; may be left out when the blueprint has one integration"),
    use_case: Slug,
    format: z.enum(["json", "xml"]).default("json"),
    payload: z.unknown().refine((v) => v !== undefined, "required: the event's payload (JSON, an XML string, or { \"$file\": \"<path in the package>\" })"),
    expected: z
      .object({
        entity_updates: z.array(ExpectedEntityUpdate).default([]),
        meter_readings_updates: z.array(ExpectedMeterReading).default([]),
      })
      .strict(),
  })
  .strict();

export interface Fixture {
  /** The fixture's path in the package (`fixtures/private-customer.json`). */
  file: string;
  description?: string;
  integration: string;
  useCase: string;
  format: "json" | "xml";
  /** The payload as the mapping sees it (XML parsed by the host's rules). */
  input: unknown;
  expected: { entity_updates: unknown[]; meter_readings_updates: unknown[] };
}

/** Fixture files: the `.json` files directly in the manifest's fixtures folder (subfolders hold payload files). */
export function fixtureFiles(manifest: ManifestView, files: PackageFiles): string[] {
  if (!manifest.fixtures) return [];
  const folder = manifest.fixtures.replace(/\/+$/, "");
  return Object.keys(files)
    .filter((name) => name.startsWith(`${folder}/`) && name.endsWith(".json") && !name.slice(folder.length + 1).includes("/"))
    .sort();
}

/** Reads and checks every fixture; issues name the fixture file and the path inside it. */
export function loadFixtures(manifest: ManifestView, files: PackageFiles, useCases: Map<string, CheckedUseCase>): { fixtures: Fixture[]; issues: Issue[] } {
  const fixtures: Fixture[] = [];
  const issues: Issue[] = [];
  if (!manifest.fixtures) return { fixtures, issues };
  const folderProblem = packagePathProblem(manifest.fixtures.replace(/\/+$/, ""));
  if (folderProblem) return { fixtures, issues: [{ file: MANIFEST_FILE, path: "fixtures", message: `the folder ${folderProblem}` }] };
  const names = fixtureFiles(manifest, files);
  if (names.length === 0) return { fixtures, issues: [{ file: MANIFEST_FILE, path: "fixtures", message: `no fixture files (*.json) in '${manifest.fixtures}'` }] };

  for (const file of names) {
    const problem = (path: string, message: string) => issues.push({ file, path, message });
    let raw: unknown;
    try {
      raw = readJson(files, file);
    } catch (err) {
      if (!(err instanceof PackageError)) throw err;
      issues.push(...err.issues);
      continue;
    }
    const parsed = FixtureFile.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problem(issue.path.map(String).join("."), issue.message);
      continue;
    }
    const fixture = parsed.data;
    const integration = fixture.integration ?? (manifest.integrations.length === 1 ? manifest.integrations[0]!.slug : undefined);
    if (integration === undefined) {
      problem("integration", `required: the blueprint has ${manifest.integrations.length} integrations (${manifest.integrations.map((i) => i.slug).join(", ") || "none"})`);
      continue;
    }
    const declared = manifest.integrations.find((i) => i.slug === integration);
    if (!declared) {
      problem("integration", `'${integration}' is not an integration of the blueprint`);
      continue;
    }
    const useCase = declared.use_cases.find((u) => u.slug === fixture.use_case);
    if (!useCase) {
      problem("use_case", `'${fixture.use_case}' is not a use case of integration '${integration}' (${declared.use_cases.map((u) => u.slug).join(", ")})`);
      continue;
    }
    if (useCase.type !== "inbound") {
      problem("use_case", `'${fixture.use_case}' is an ${useCase.type} use case; fixtures test inbound mappings`);
      continue;
    }
    let payload: unknown = fixture.payload;
    if (isFileReference(payload)) {
      const ref = payload.$file;
      const refProblem = packagePathProblem(ref) ?? (Object.hasOwn(files, ref) ? null : "is not in the package");
      if (refProblem) {
        problem("payload.$file", `'${ref}' ${refProblem}`);
        continue;
      }
      try {
        payload = fixture.format === "json" ? readJson(files, ref) : readText(files, ref);
      } catch (err) {
        if (!(err instanceof PackageError)) throw err;
        issues.push(...err.issues.map((i) => ({ ...i, via: `${file} payload.$file` })));
        continue;
      }
    }
    let input: unknown;
    try {
      input = parsePayload(fixture.format, payload);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      const at = err.details.line !== undefined ? ` (line ${err.details.line}, column ${err.details.column})` : "";
      problem("payload", `${err.message}${at}`);
      continue;
    }
    // A use case whose configuration is invalid has its own issue already; its fixtures cannot run.
    if (!useCases.has(`${integration}/${fixture.use_case}`)) continue;
    fixtures.push({ file, description: fixture.description, integration, useCase: fixture.use_case, format: fixture.format, input, expected: fixture.expected });
  }
  return { fixtures, issues };
}

export interface FixtureResult {
  fixture: Fixture;
  /** Differences between expected and produced; empty when the fixture passes. */
  differences: Difference[];
  /** Set when the mapping failed outright (a JSONata error at run time, a limit). */
  error?: string;
  warnings: MappingResult["warnings"];
  produced?: { entity_updates: number; meter_readings_updates: number };
}

/** Runs a use case's `pre_mapping` app action on a payload (the blueprint's own app, in the SDK harness); undefined when it cannot. */
export type PreMapping = (ref: { app: string; action: string }, payload: unknown) => Promise<{ output: unknown } | { error: string } | undefined>;

/**
 * Runs one fixture's event through the use case's pre_mapping app (when `preMapping` can run it) and
 * the mapping engine, and compares with its expected entities.
 */
export async function runFixture(fixture: Fixture, useCase: CheckedUseCase, preMapping?: PreMapping): Promise<FixtureResult> {
  const configuration = useCase.useCase.configuration as InboundConfiguration;
  let input = fixture.input;
  if (configuration.pre_mapping && preMapping) {
    const pre = await preMapping(configuration.pre_mapping, input);
    if (pre && "error" in pre) return { fixture, differences: [], error: `the pre_mapping app failed: ${pre.error}`, warnings: [] };
    if (pre) input = pre.output;
  }
  let result: MappingResult;
  try {
    result = await runMapping(configuration, input);
  } catch (err) {
    if (!(err instanceof MappingError)) throw err;
    return { fixture, differences: [], error: `the mapping failed: ${err.message}`, warnings: [] };
  }
  // Compared as stored: through JSON, so an undefined inside a value counts as absent.
  const actual = JSON.parse(JSON.stringify({ entity_updates: result.entity_updates, meter_readings_updates: result.meter_readings_updates }));
  return {
    fixture,
    differences: diffValues(fixture.expected, actual),
    warnings: result.warnings,
    produced: { entity_updates: result.entity_updates.length, meter_readings_updates: result.meter_readings_updates.length },
  };
}
