// Package archives and signatures in Node, as the CLI uses them.
import { describe, expect, it } from "vitest";
import { digestOf, generatePublisherKey, packBundle, readManifest, signPackage, unpackBundle, verifyPackage } from "../src/blueprint";

const manifest = {
  name: "@acme/demo",
  version: "1.0.0",
  title: "Demo",
  description: { summary: "A demo" },
  engines: { "erp-edge": "^0.1.0" },
  integrations: [],
};

describe("package signatures", () => {
  it("verifies a signed archive, and refuses a tampered one or another key", async () => {
    const archive = packBundle({ "blueprint.json": new TextEncoder().encode(JSON.stringify(manifest)) });
    expect(readManifest(unpackBundle(archive)).name).toBe("@acme/demo");
    const key = await generatePublisherKey();
    const other = await generatePublisherKey();
    const digest = await digestOf(archive);
    const jws = await signPackage({ name: "@acme/demo", version: "1.0.0", digest }, key.privateJwk);
    await expect(verifyPackage(jws, key.publicJwk, archive, { name: "@acme/demo", version: "1.0.0" })).resolves.toMatchObject({ digest });
    const tampered = archive.slice();
    tampered[tampered.length - 30] = tampered[tampered.length - 30]! ^ 1;
    await expect(verifyPackage(jws, key.publicJwk, tampered, { name: "@acme/demo", version: "1.0.0" })).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    await expect(verifyPackage(jws, other.publicJwk, archive, { name: "@acme/demo", version: "1.0.0" })).rejects.toMatchObject({ code: "SIGNATURE_INVALID" });
    await expect(verifyPackage(jws, key.publicJwk, archive, { name: "@acme/demo", version: "1.0.1" })).rejects.toMatchObject({ code: "SIGNATURE_INVALID" });
    // The same files pack to the same bytes.
    expect(await digestOf(packBundle({ "blueprint.json": new TextEncoder().encode(JSON.stringify(manifest)) }))).toBe(digest);
  });
});
