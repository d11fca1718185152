// `blueprint validate`: the manifest, every `$file` it references, and every use-case configuration
// checked with the host's own schemas (so a broken JSONata expression is caught before publishing),
// each problem named by the file to edit and the JSON path inside it.
import semver from "semver";
import { pullTargetProblem } from "../../../src/integrations/pull-configuration";
import { appActionReferences, UseCaseInput } from "../../../src/integrations/schema";
import { VERSION as HOST_VERSION } from "../../../src/platform/version";
import {
  isFileReference,
  MANIFEST_FILE,
  PackageError,
  packagePathProblem,
  parseManifest,
  readJson,
  readReadme,
  readText,
  resolveConfigurations,
  type BlueprintManifest,
  type PackageFiles,
} from "../blueprint";
import { loadFixtures, type Fixture } from "./fixtures";

type Key = string | number;

/** One problem: the file to edit and the JSON path inside it; `via` says where the manifest references that file. */
export interface Issue {
  file: string;
  path: string;
  message: string;
  via?: string;
}

/** A use case whose configuration passed the host's schema, ready to run. */
export interface CheckedUseCase {
  integration: string;
  slug: string;
  type: UseCaseInput["type"];
  useCase: UseCaseInput;
}

export interface PackageCheck {
  /** Undefined when blueprint.json itself is unusable. */
  manifest?: BlueprintManifest;
  /** `<integration slug>/<use case slug>` to its validated use case. */
  useCases: Map<string, CheckedUseCase>;
  fixtures: Fixture[];
  issues: Issue[];
  warnings: string[];
}

const joinPath = (path: readonly Key[]) => path.map(String).join(".");

export function formatIssue(issue: Issue): string {
  return `${issue.file}: ${issue.path ? `${issue.path}: ` : ""}${issue.message}${issue.via ? ` (referenced at ${issue.via})` : ""}`;
}

const fromPackageError = (err: PackageError, via?: string): Issue[] =>
  err.issues.length > 0 ? err.issues.map((i) => ({ ...i, ...(via && { via }) })) : [{ file: MANIFEST_FILE, path: "", message: err.message }];

interface ResolvedConfiguration {
  value: unknown;
  /** Where a `$file` was replaced (path inside the configuration) and by which file. */
  refs: { at: Key[]; file: string }[];
}

/**
 * One use case's configuration with its `$file` references replaced, by the rules of the shared
 * resolveConfigurations (`.json` parsed, anything else as text, nothing followed inside a referenced
 * file), but remembering which file each part came from so issues can name it.
 */
function resolveConfiguration(raw: unknown, files: PackageFiles, base: Key[], issues: Issue[]): ResolvedConfiguration | undefined {
  const refs: ResolvedConfiguration["refs"] = [];
  let failed = false;
  const resolve = (value: unknown, at: Key[]): unknown => {
    if (isFileReference(value)) {
      const where = joinPath([...base, ...at]);
      const problem = packagePathProblem(value.$file);
      if (problem || !Object.hasOwn(files, value.$file)) {
        issues.push({ file: MANIFEST_FILE, path: `${where}.$file`, message: problem ? `'${value.$file}' ${problem}` : `'${value.$file}' is not in the package` });
        failed = true;
        return undefined;
      }
      refs.push({ at, file: value.$file });
      try {
        return value.$file.endsWith(".json") ? readJson(files, value.$file) : readText(files, value.$file);
      } catch (err) {
        if (!(err instanceof PackageError)) throw err;
        issues.push(...fromPackageError(err, `${MANIFEST_FILE} ${where}`));
        failed = true;
        return undefined;
      }
    }
    if (Array.isArray(value)) return value.map((v, i) => resolve(v, [...at, i]));
    if (typeof value === "object" && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: resolve(v, [...at, k]), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return value;
  };
  const value = resolve(raw, []);
  if (failed) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    issues.push({ file: refs[0]?.file ?? MANIFEST_FILE, path: refs[0] ? "" : joinPath(base), message: "a use case configuration must be a JSON object", ...(refs[0] && { via: `${MANIFEST_FILE} ${joinPath(base)}` }) });
    return undefined;
  }
  return { value, refs };
}

/** The file and path an issue inside a resolved configuration belongs to. */
function locate(path: readonly Key[], resolved: ResolvedConfiguration, base: Key[]): Pick<Issue, "file" | "path" | "via"> {
  const ref = resolved.refs
    .filter((r) => r.at.length <= path.length && r.at.every((k, i) => String(k) === String(path[i])))
    .sort((a, b) => b.at.length - a.at.length)[0];
  if (!ref) return { file: MANIFEST_FILE, path: joinPath([...base, ...path]) };
  return { file: ref.file, path: joinPath(path.slice(ref.at.length)), via: `${MANIFEST_FILE} ${joinPath([...base, ...ref.at])}` };
}

/** The parts of a manifest the checks below read: the validated manifest, or what is usable of an invalid one. */
export interface ManifestView {
  fixtures?: string;
  integrations: { slug: string; use_cases: { slug: string; name: string; type: string; enabled?: boolean; configuration: unknown }[] }[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The integrations and use cases of a manifest that failed its schema, as far as they can be read,
 * so that one bad field does not hide the problems of every configuration and fixture.
 */
function lenientView(raw: unknown): ManifestView {
  const view: ManifestView = { integrations: [] };
  if (!isRecord(raw)) return view;
  if (typeof raw.fixtures === "string") view.fixtures = raw.fixtures;
  if (!Array.isArray(raw.integrations)) return view;
  for (const integration of raw.integrations) {
    const useCases = isRecord(integration) && Array.isArray(integration.use_cases) ? integration.use_cases : [];
    view.integrations.push({
      slug: isRecord(integration) && typeof integration.slug === "string" ? integration.slug : "",
      use_cases: useCases.map((uc) => ({
        slug: isRecord(uc) && typeof uc.slug === "string" ? uc.slug : "",
        name: isRecord(uc) && typeof uc.name === "string" ? uc.name : "",
        type: isRecord(uc) && typeof uc.type === "string" ? uc.type : "",
        configuration: isRecord(uc) ? uc.configuration : undefined,
      })),
    });
  }
  return view;
}

const USE_CASE_TYPES = new Set(["inbound", "outbound", "file_proxy", "pull"]);

/** Files holding a private JWK (a key generated into the blueprint folder): published, it would be anyone's. */
function privateKeysIn(files: PackageFiles): Issue[] {
  const issues: Issue[] = [];
  for (const [file, bytes] of Object.entries(files)) {
    if (!/\.(jwk|json)$/i.test(file) || bytes.byteLength > 64 * 1024) continue;
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      continue;
    }
    if (isRecord(value) && typeof value.kty === "string" && typeof value.d === "string") {
      issues.push({ file, path: "", message: "holds a private key; move it out of the blueprint folder (and make a new one if it was ever shared)" });
    }
  }
  return issues;
}

/** Checks a package's files completely, collecting every issue rather than stopping at the first. */
export function checkPackage(files: PackageFiles): PackageCheck {
  const check: PackageCheck = { useCases: new Map(), fixtures: [], issues: [], warnings: [] };
  let raw: unknown;
  try {
    raw = readJson(files, MANIFEST_FILE);
  } catch (err) {
    if (!(err instanceof PackageError)) throw err;
    check.issues.push(...fromPackageError(err));
    return check;
  }
  let view: ManifestView;
  try {
    check.manifest = parseManifest(raw);
    view = check.manifest;
    if (!semver.satisfies(HOST_VERSION, check.manifest.engines["erp-edge"], { includePrerelease: true })) {
      check.warnings.push(`engines["erp-edge"] is '${check.manifest.engines["erp-edge"]}': this erp-edge (${HOST_VERSION}) would refuse to install it`);
    }
  } catch (err) {
    if (!(err instanceof PackageError)) throw err;
    check.issues.push(...fromPackageError(err));
    view = lenientView(raw);
  }

  view.integrations.forEach((integration, n) =>
    integration.use_cases.forEach((uc, i) => {
      if (uc.configuration === undefined || !USE_CASE_TYPES.has(uc.type)) return;
      const base: Key[] = ["integrations", n, "use_cases", i, "configuration"];
      const resolved = resolveConfiguration(uc.configuration, files, base, check.issues);
      if (!resolved) return;
      const parsed = UseCaseInput.safeParse({
        name: uc.name || "-",
        slug: uc.slug || "-",
        type: uc.type,
        ...(typeof uc.enabled === "boolean" && { enabled: uc.enabled }),
        configuration: resolved.value,
      });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          if (issue.path[0] === "configuration") check.issues.push({ ...locate(issue.path.slice(1) as Key[], resolved, base), message: issue.message });
          // The manifest's schema has reported name, slug and type already when it failed.
          else if (check.manifest) check.issues.push({ file: MANIFEST_FILE, path: joinPath(["integrations", n, "use_cases", i, ...(issue.path as Key[])]), message: issue.message });
        }
        return;
      }
      check.useCases.set(`${integration.slug}/${uc.slug}`, { integration: integration.slug, slug: uc.slug, type: parsed.data.type, useCase: parsed.data });
      // What the host checks across use cases at install: a pull's events need an inbound use case of
      // the same integration; an app the blueprint does not list must already be installed in the tenant.
      if (parsed.data.type === "pull") {
        const problem = pullTargetProblem(parsed.data.configuration.target_use_case, integration.use_cases);
        if (problem) check.issues.push({ ...locate(["target_use_case"], resolved, base), message: problem });
      }
      const listed = new Set((check.manifest?.apps ?? []).map((a) => a.name));
      for (const ref of appActionReferences(parsed.data)) {
        if (check.manifest && !listed.has(ref.app)) {
          check.warnings.push(`${joinPath(["integrations", n, "use_cases", i, ...ref.path])}: ${ref.app} is not in "apps"; installing needs it installed in the tenant already`);
        }
      }
    }),
  );

  // What the registry and the host will do with these files; agrees with the above unless they drift apart.
  if (check.manifest && check.issues.length === 0) {
    try {
      resolveConfigurations(check.manifest, files);
    } catch (err) {
      if (!(err instanceof PackageError)) throw err;
      check.issues.push(...fromPackageError(err));
    }
  }

  check.issues.push(...privateKeysIn(files));
  try {
    readReadme(files);
  } catch (err) {
    if (!(err instanceof PackageError)) throw err;
    check.issues.push(...err.issues);
  }
  const fixtures = loadFixtures(view, files, check.useCases);
  check.fixtures = fixtures.fixtures;
  check.issues.push(...fixtures.issues);
  return check;
}
