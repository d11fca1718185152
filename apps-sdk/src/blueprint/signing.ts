// Package signatures: a compact JWS (EdDSA over Ed25519, jose) whose payload names the package,
// its version and the SHA-256 digest of its archive. The registry checks it at publish and the
// host checks it again at install, so neither has to trust the other's word.
import { calculateJwkThumbprint, compactVerify, CompactSign, exportJWK, generateKeyPair, importJWK, decodeProtectedHeader, type JWK } from "jose";
import { z } from "zod";
import { ExactVersion, PackageName } from "./manifest";

/** A publisher's Ed25519 public key as a JWK. A private part (`d`) is refused: it must never be sent. */
export const PublicKeyJwk = z
  .object({
    kty: z.literal("OKP"),
    crv: z.literal("Ed25519"),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "the base64url of a 32-byte Ed25519 public key"),
    kid: z.string().max(128).optional(),
    alg: z.enum(["EdDSA", "Ed25519"]).optional(),
    use: z.literal("sig").optional(),
  })
  .strict();
export type PublicKeyJwk = z.infer<typeof PublicKeyJwk>;

/** What a package signature says. */
export const SignedPackage = z.object({ name: PackageName, version: ExactVersion, digest: z.string().regex(/^sha256-[A-Za-z0-9+/]{43}=$/) }).strict();
export type SignedPackage = z.infer<typeof SignedPackage>;

export const SIGNATURE_TYPE = "erp-edge-package+jws";

export class SignatureError extends Error {
  constructor(
    readonly code: "SIGNATURE_INVALID" | "DIGEST_MISMATCH",
    message: string,
  ) {
    super(message);
    this.name = "SignatureError";
  }
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** `sha256-<base64>` of the archive bytes (the Subresource Integrity form npm uses). */
export async function digestOf(bytes: Uint8Array): Promise<string> {
  return `sha256-${base64(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)))}`;
}

/** The key id of a public key: its RFC 7638 thumbprint, so the id cannot name another key. */
export function keyIdOf(jwk: PublicKeyJwk): Promise<string> {
  return calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, "sha256");
}

/** A new Ed25519 key pair as JWKs, each carrying the key id. */
export async function generatePublisherKey(): Promise<{ privateJwk: JWK; publicJwk: PublicKeyJwk; kid: string }> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const pub = (await exportJWK(publicKey)) as PublicKeyJwk;
  const kid = await keyIdOf(pub);
  const publicJwk: PublicKeyJwk = { kty: "OKP", crv: "Ed25519", x: pub.x, kid, alg: "EdDSA", use: "sig" };
  return { privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "EdDSA", use: "sig" }, publicJwk, kid };
}

/** Signs `{ name, version, digest }` with a publisher's private JWK; the header names its key id. */
export async function signPackage(pkg: SignedPackage, privateJwk: JWK): Promise<string> {
  if (privateJwk.kty !== "OKP" || privateJwk.crv !== "Ed25519" || typeof privateJwk.d !== "string") {
    throw new SignatureError("SIGNATURE_INVALID", "The signing key must be an Ed25519 private JWK (kty OKP, crv Ed25519, with d)");
  }
  const kid = await keyIdOf({ kty: "OKP", crv: "Ed25519", x: privateJwk.x! });
  const key = await importJWK({ ...privateJwk, alg: "EdDSA" }, "EdDSA");
  const payload = new TextEncoder().encode(JSON.stringify(SignedPackage.parse(pkg)));
  return new CompactSign(payload).setProtectedHeader({ alg: "EdDSA", kid, typ: SIGNATURE_TYPE }).sign(key);
}

/** The key id a signature's header names, or null when it is not a readable compact JWS. */
export function signatureKeyId(jws: string): string | null {
  try {
    const header = decodeProtectedHeader(jws);
    return typeof header.kid === "string" ? header.kid : null;
  } catch {
    return null;
  }
}

/**
 * Verifies a package: the signature by `publicJwk` over exactly `{ name, version, digest }` for the
 * expected name and version (SIGNATURE_INVALID), then the archive's digest against the signed one
 * (DIGEST_MISMATCH), so a tampered archive with a genuine signature is always DIGEST_MISMATCH.
 */
export async function verifyPackage(jws: string, publicJwk: PublicKeyJwk, archive: Uint8Array, expected: { name: string; version: string }): Promise<SignedPackage> {
  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    const key = await importJWK({ kty: "OKP", crv: "Ed25519", x: publicJwk.x }, "EdDSA");
    verified = await compactVerify(jws, key, { algorithms: ["EdDSA"] });
  } catch (err) {
    throw new SignatureError("SIGNATURE_INVALID", `The signature does not verify with key ${await keyIdOf(publicJwk)}: ${(err as Error).message}`);
  }
  if (verified.protectedHeader.typ !== SIGNATURE_TYPE) throw new SignatureError("SIGNATURE_INVALID", `The signature's typ must be '${SIGNATURE_TYPE}'`);
  let signed: SignedPackage;
  try {
    signed = SignedPackage.parse(JSON.parse(new TextDecoder().decode(verified.payload)));
  } catch {
    throw new SignatureError("SIGNATURE_INVALID", "The signature's payload is not { name, version, digest }");
  }
  if (signed.name !== expected.name || signed.version !== expected.version) {
    throw new SignatureError("SIGNATURE_INVALID", `The signature is for ${signed.name}@${signed.version}, not ${expected.name}@${expected.version}`);
  }
  const digest = await digestOf(archive);
  if (digest !== signed.digest) throw new SignatureError("DIGEST_MISMATCH", `The archive's digest is ${digest}; the signature names ${signed.digest}`);
  return signed;
}
