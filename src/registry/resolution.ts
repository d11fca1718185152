// Which published version an install gets: semver ranges over the registry's versions, never a
// yanked one, except that an exact pin installs even a yanked version (with a warning), as cargo does.
import semver from "semver";
import type { RegistryPackage, RegistryVersionSummary } from "../registry/client";

/** What a request may ask for: "latest" (the dist tag), an exact version, or a range. */
export const LATEST = "latest";

export type Resolution =
  | { ok: true; version: string; warnings: string[] }
  | { ok: false; reason: string; available: string[] };

const warningsFor = (v: RegistryVersionSummary): string[] => [
  ...(v.yanked ? [`${v.version} is yanked${v.yank_reason ? `: ${v.yank_reason}` : ""}; it is installed only because it was pinned exactly`] : []),
  ...(v.deprecated ? [`${v.version} is deprecated${v.deprecation_message ? `: ${v.deprecation_message}` : ""}`] : []),
];

/**
 * The version of `pkg` that `spec` selects: an exact version (semver.valid) is taken as it is, even
 * yanked; "latest" is the `latest` dist tag unless yanked, else the highest stable non-yanked version;
 * any other range takes the highest non-yanked version satisfying it (semver.maxSatisfying).
 *
 * @example resolveVersion(pkg, "^1") // { ok: true, version: "1.4.2", warnings: [] }
 */
export function resolveVersion(pkg: Pick<RegistryPackage, "versions" | "dist_tags">, spec: string): Resolution {
  const byVersion = new Map(pkg.versions.map((v) => [v.version, v]));
  const installable = pkg.versions.filter((v) => !v.yanked).map((v) => v.version);
  const available = installable.sort(semver.rcompare);
  const exact = semver.valid(spec);
  if (exact) {
    const found = byVersion.get(exact);
    return found ? { ok: true, version: found.version, warnings: warningsFor(found) } : { ok: false, reason: `no version ${exact} is published`, available };
  }
  let chosen: string | null;
  if (spec === LATEST) {
    const tagged = pkg.dist_tags.latest ? byVersion.get(pkg.dist_tags.latest) : undefined;
    chosen = tagged && !tagged.yanked ? tagged.version : semver.maxSatisfying(installable, "*");
  } else {
    chosen = semver.maxSatisfying(installable, spec);
  }
  if (!chosen) return { ok: false, reason: spec === LATEST ? "no installable version is published" : `no installable (non-yanked) version satisfies '${spec}'`, available };
  return { ok: true, version: chosen, warnings: warningsFor(byVersion.get(chosen)!) };
}

/** Whether a request's version is "latest", an exact version or a valid range. */
export const isVersionSpec = (spec: string) => spec === LATEST || semver.validRange(spec) !== null;

/**
 * The major versions an upgrade from `from` to `to` crosses (`1.4.0` → `3.0.0`: [2, 3]); empty for
 * a minor, patch or downgrade.
 */
export function majorsCrossed(from: string, to: string): number[] {
  const out: number[] = [];
  for (let m = semver.major(from) + 1; m <= semver.major(to); m++) out.push(m);
  return out;
}
