import { describe, expect, it } from "vitest";
import { packBundle } from "../../apps-sdk/src/blueprint/bundle";
import { digestOf, generatePublisherKey, signPackage } from "../../apps-sdk/src/blueprint/signing";
import { AppError } from "../platform/errors";
import { verifyPublishedPackage } from "./verify";

const expected = { name: "@acme/customers", version: "1.0.0" };

async function published(overrides: Record<string, unknown> = {}) {
  const key = await generatePublisherKey();
  const archive = packBundle({ "blueprint.json": new TextEncoder().encode('{"name":"@acme/customers"}') });
  const digest = await digestOf(archive);
  const signature = await signPackage({ ...expected, digest }, key.privateJwk);
  return { key, archive, meta: { signature, public_key: key.publicJwk, key_id: key.kid, publisher: "@acme", digest, ...overrides } };
}

async function codeOf(promise: Promise<unknown>) {
  try {
    await promise;
    return "ok";
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}

describe("verifyPublishedPackage", () => {
  it("accepts the archive the publisher signed and returns its digest", async () => {
    const { meta, archive } = await published();
    expect(await verifyPublishedPackage(meta, archive, expected)).toBe(meta.digest);
  });

  it("refuses a changed archive with DIGEST_MISMATCH", async () => {
    const { meta, archive } = await published();
    const tampered = archive.slice();
    tampered[tampered.length - 30] = tampered[tampered.length - 30]! ^ 0xff;
    expect(await codeOf(verifyPublishedPackage(meta, tampered, expected))).toBe("DIGEST_MISMATCH");
  });

  it("refuses another key, another publisher, mismatched key ids and another package's signature", async () => {
    const { meta, archive } = await published();
    const other = await generatePublisherKey();
    expect(await codeOf(verifyPublishedPackage({ ...meta, public_key: other.publicJwk, key_id: other.kid }, archive, expected))).toBe("SIGNATURE_INVALID");
    expect(await codeOf(verifyPublishedPackage({ ...meta, publisher: "@evil" }, archive, expected))).toBe("SIGNATURE_INVALID");
    expect(await codeOf(verifyPublishedPackage({ ...meta, key_id: other.kid }, archive, expected))).toBe("SIGNATURE_INVALID");
    expect(await codeOf(verifyPublishedPackage({ ...meta, public_key: { ...meta.public_key, d: "secret" } as never }, archive, expected))).toBe("SIGNATURE_INVALID");
    expect(await codeOf(verifyPublishedPackage(meta, archive, { ...expected, version: "1.0.1" }))).toBe("SIGNATURE_INVALID");
    expect(await codeOf(verifyPublishedPackage({ ...meta, signature: "not.a.jws" }, archive, expected))).toBe("SIGNATURE_INVALID");
  });

  it("refuses a registry digest that is not the signed one", async () => {
    const { meta, archive } = await published();
    expect(await codeOf(verifyPublishedPackage({ ...meta, digest: `sha256-${"A".repeat(43)}=` }, archive, expected))).toBe("DIGEST_MISMATCH");
  });
});
