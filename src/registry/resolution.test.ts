import { describe, expect, it } from "vitest";
import type { RegistryVersionSummary } from "../registry/client";
import { isVersionSpec, majorsCrossed, resolveVersion } from "./resolution";

const v = (version: string, extra: Partial<RegistryVersionSummary> = {}): RegistryVersionSummary => ({
  version, published_at: "2026-01-01T00:00:00.000Z", digest: "sha256-x", yanked: false, yank_reason: null, deprecated: false, deprecation_message: null, ...extra,
});

const pkg = {
  dist_tags: { latest: "1.2.0" },
  versions: [v("1.0.0"), v("1.1.0", { deprecated: true, deprecation_message: "use 1.2" }), v("1.2.0"), v("1.3.0", { yanked: true, yank_reason: "broken mapping" }), v("2.0.0-beta.1"), v("2.0.0")],
};

describe("resolveVersion", () => {
  it("takes the highest non-yanked version satisfying a range", () => {
    expect(resolveVersion(pkg, "^1")).toEqual({ ok: true, version: "1.2.0", warnings: [] });
    expect(resolveVersion(pkg, "~1.1.0")).toMatchObject({ ok: true, version: "1.1.0", warnings: ["1.1.0 is deprecated: use 1.2"] });
    expect(resolveVersion(pkg, ">=2.0.0-0")).toMatchObject({ ok: true, version: "2.0.0" });
  });

  it("installs an exactly pinned yanked version with a warning", () => {
    const r = resolveVersion(pkg, "1.3.0");
    expect(r).toMatchObject({ ok: true, version: "1.3.0" });
    expect(r.ok && r.warnings[0]).toContain("yanked: broken mapping");
  });

  it("follows the latest tag unless it is yanked", () => {
    expect(resolveVersion(pkg, "latest")).toMatchObject({ version: "1.2.0" });
    expect(resolveVersion({ ...pkg, dist_tags: { latest: "1.3.0" } }, "latest")).toMatchObject({ version: "2.0.0" });
    expect(resolveVersion({ ...pkg, dist_tags: {} }, "latest")).toMatchObject({ version: "2.0.0" });
  });

  it("says why nothing matches and what is available", () => {
    expect(resolveVersion(pkg, "^3")).toEqual({ ok: false, reason: "no installable (non-yanked) version satisfies '^3'", available: ["2.0.0", "2.0.0-beta.1", "1.2.0", "1.1.0", "1.0.0"] });
    expect(resolveVersion(pkg, "9.9.9")).toMatchObject({ ok: false, reason: "no version 9.9.9 is published" });
    expect(resolveVersion({ dist_tags: {}, versions: [v("1.0.0", { yanked: true })] }, "latest")).toMatchObject({ ok: false });
  });
});

describe("version specs", () => {
  it("accepts latest, versions and ranges only", () => {
    for (const ok of ["latest", "1.2.0", "^1", "~1.2", ">=1 <3", "*", "1.x"]) expect(isVersionSpec(ok)).toBe(true);
    for (const bad of ["newest", "^^1", "1.2.3.4", ">=>1"]) expect(isVersionSpec(bad)).toBe(false);
  });

  it("lists the majors an upgrade crosses", () => {
    expect(majorsCrossed("1.4.0", "3.0.0")).toEqual([2, 3]);
    expect(majorsCrossed("1.4.0", "1.9.0")).toEqual([]);
    expect(majorsCrossed("2.0.0", "1.0.0")).toEqual([]);
  });
});
