// A package's README.md in the registry (issue #14, for the Hub): read from the archive at publish,
// bounded, stored per version, answered as `readme` by the package (its latest version's) and
// version endpoints, null when the package has none.
import { describe, expect, it } from "vitest";
import { BUNDLE_LIMITS } from "../apps-sdk/src/blueprint/bundle";
import { api, expectError } from "./helpers";
import { appFiles, sampleAppManifest, uploadApp } from "./app-package-helpers";
import { newPublisher, packageFiles, publish, sampleManifest, signedUpload, unique, upload, type Publisher } from "./registry-helpers";
import { packBundle } from "../apps-sdk/src/blueprint/bundle";

const get = (p: Publisher, path: string) => api("GET", `/v1/registry/packages/${path}`, { token: p.token });

describe("readme", () => {
  it("answers a blueprint's README.md: the latest version's on the package, each version's on its own", async () => {
    const p = await newPublisher("readme");
    const name = `${p.name}/sap-s4hana-${unique()}`;
    const first = "# SAP S/4HANA\n\nCustomers and contracts from **S/4HANA** OData.\n";
    await publish(p, sampleManifest(name, "1.0.0", { title: "SAP S/4HANA", keywords: ["erp"] }), { "README.md": first });
    expect((await get(p, name)).body.readme).toBe(first);
    expect((await get(p, `${name}/1.0.0`)).body.readme).toBe(first);

    const second = "# SAP S/4HANA\n\nNow with business partners. Ümlauts and emoji 🚀 survive.\n";
    await publish(p, sampleManifest(name, "1.1.0"), { "README.md": second });
    expect((await get(p, name)).body).toMatchObject({ dist_tags: { latest: "1.1.0" }, readme: second });
    expect((await get(p, `${name}/1.0.0`)).body.readme).toBe(first);
    expect((await get(p, `${name}/1.1.0`)).body.readme).toBe(second);

    // A prerelease is never latest: the package keeps showing 1.1.0's README.
    await publish(p, sampleManifest(name, "2.0.0-beta.1"), { "README.md": "# beta" });
    expect((await get(p, name)).body.readme).toBe(second);
    // Yanked, 1.1.0 is no longer latest; 1.0.0 is, and so is its README.
    expect((await api("POST", `/v1/registry/packages/${name}/1.1.0/yank`, { token: p.token, json: { reason: "broken" } })).status).toBe(200);
    expect((await get(p, name)).body).toMatchObject({ dist_tags: { latest: "1.0.0" }, readme: first });

    // Found by ?q= on its name (the Hub's search for "sap").
    const found = await api("GET", `/v1/registry/packages?q=SAP&kind=blueprint&limit=100`, { token: p.token });
    expect(found.body.packages.map((x: { name: string }) => x.name)).toContain(name);
    expect(found.body.packages[0]).not.toHaveProperty("readme");
  });

  it("answers null for a package without README.md, and for one whose README is only in a subfolder", async () => {
    const p = await newPublisher("readme-none");
    const name = `${p.name}/plain-${unique()}`;
    await publish(p, sampleManifest(name, "1.0.0"), { "docs/README.md": "# not the root's" });
    expect((await get(p, name)).body.readme).toBeNull();
    expect((await get(p, `${name}/1.0.0`)).body.readme).toBeNull();
    const lower = `${p.name}/lower-${unique()}`;
    await publish(p, sampleManifest(lower, "1.0.0"), { "readme.md": "# spelt otherwise" });
    expect((await get(p, lower)).body.readme).toBeNull();
  });

  it("carries an app's README.md; an app without one answers null", async () => {
    const p = await newPublisher("readme-app");
    const name = `${p.name}/sap-dates-${unique()}`;
    const readme = "# sap-dates\n\nConverts `/Date(ms)/` values.\n";
    expect((await uploadApp(p, appFiles(sampleAppManifest(name, "1.0.0"), { extra: { "README.md": readme } }), name, "1.0.0")).status).toBe(201);
    expect((await get(p, name)).body).toMatchObject({ kind: "app", readme });
    expect((await get(p, `${name}/1.0.0`)).body.readme).toBe(readme);
    expect((await uploadApp(p, appFiles(sampleAppManifest(name, "1.1.0")), name, "1.1.0")).status).toBe(201);
    expect((await get(p, name)).body.readme).toBeNull();
    expect((await get(p, `${name}/1.0.0`)).body.readme).toBe(readme);
  });

  it("refuses a README over 256 KB (413) or not UTF-8 (422), for blueprints and apps, storing nothing", async () => {
    const p = await newPublisher("readme-bad");
    const name = `${p.name}/big-${unique()}`;
    const manifest = sampleManifest(name, "1.0.0");
    const sendBlueprint = async (readme: Uint8Array) => {
      const files = packageFiles(manifest);
      files["README.md"] = readme;
      return upload(p.token, await signedUpload(packBundle(files), name, "1.0.0", p.privateJwk));
    };
    const big = expectError(await sendBlueprint(new TextEncoder().encode("x".repeat(BUNDLE_LIMITS.maxReadmeBytes + 1))), 413, "PAYLOAD_TOO_LARGE");
    expect(big).toEqual([{ file: "README.md", path: "", message: "file too large" }]);
    expect(expectError(await sendBlueprint(new Uint8Array([0x23, 0x20, 0xff, 0xfe])), 422, "UNPROCESSABLE")).toEqual([{ file: "README.md", path: "", message: "not valid UTF-8" }]);
    expectError(await get(p, name), 404, "NOT_FOUND");
    // Exactly at the limit is fine.
    const atLimit = "y".repeat(BUNDLE_LIMITS.maxReadmeBytes);
    expect((await sendBlueprint(new TextEncoder().encode(atLimit))).status).toBe(201);
    expect((await get(p, name)).body.readme).toHaveLength(BUNDLE_LIMITS.maxReadmeBytes);

    const appName = `${p.name}/big-app-${unique()}`;
    const res = await uploadApp(p, appFiles(sampleAppManifest(appName, "1.0.0"), { extra: { "README.md": "z".repeat(BUNDLE_LIMITS.maxReadmeBytes + 1) } }), appName, "1.0.0");
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
  });
});
