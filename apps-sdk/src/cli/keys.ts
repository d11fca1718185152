// Publisher key files: an Ed25519 private JWK, readable by its owner only, never sent anywhere.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { JWK } from "jose";
import { generatePublisherKey, keyIdOf, PublicKeyJwk } from "../blueprint";
import { CliError, messageOf } from "./io";

export interface PublisherKey {
  privateJwk: JWK;
  publicJwk: PublicKeyJwk;
  kid: string;
}

/**
 * Writes a new private key to `path` (mode 0600, parent folders created 0700) and returns the pair.
 * Refuses to replace an existing file unless `force`: a lost key cannot sign new versions.
 */
export async function generateKeyFile(path: string, options: { force?: boolean } = {}): Promise<PublisherKey> {
  const key = await generatePublisherKey();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const text = `${JSON.stringify(key.privateJwk, null, 2)}\n`;
  try {
    await writeFile(path, text, { mode: 0o600, flag: options.force ? "w" : "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new CliError(`${path} already exists; pass --force to replace it (versions signed with the old key stay verifiable only while the registry keeps that key)`);
    }
    throw new CliError(`cannot write ${path}: ${messageOf(err)}`);
  }
  // An existing file keeps its mode when overwritten.
  await chmod(path, 0o600);
  return { privateJwk: key.privateJwk, publicJwk: key.publicJwk, kid: key.kid };
}

/** The public half of a private JWK, with its key id (RFC 7638 thumbprint). */
export async function publicKeyOf(privateJwk: JWK): Promise<{ publicJwk: PublicKeyJwk; kid: string }> {
  const bare = PublicKeyJwk.parse({ kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x });
  const kid = await keyIdOf(bare);
  return { publicJwk: { ...bare, kid, alg: "EdDSA", use: "sig" }, kid };
}

/** Reads a key file written by `keys generate`; `warn` hears about a file others can read. */
export async function readPrivateKey(path: string, warn: (message: string) => void = () => {}): Promise<PublisherKey> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read the key file ${path}: ${code === "ENOENT" ? "no such file (create one with `erp-edge keys generate --out <file>`)" : messageOf(err)}`);
  }
  if (process.platform !== "win32" && ((await stat(path)).mode & 0o077) !== 0) {
    warn(`${path} is readable by other users; restrict it with chmod 600`);
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new CliError(`${path} is not a JSON Web Key (not valid JSON)`);
  }
  if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || typeof jwk.d !== "string") {
    throw new CliError(`${path} is not an Ed25519 private key (a JWK with kty "OKP", crv "Ed25519", x and d); create one with \`erp-edge keys generate\``);
  }
  let pub;
  try {
    pub = await publicKeyOf(jwk);
  } catch {
    throw new CliError(`${path}: its public part "x" is not a 32-byte Ed25519 key`);
  }
  return { privateJwk: jwk, ...pub };
}
