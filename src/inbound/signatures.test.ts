// Inbound signature checks against independently computed HMACs: the right bytes, the window, the
// header forms; and Standard Webhooks against the reference `standardwebhooks` package.
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { TOLERANCE_SECONDS, verifyStandardWebhook, verifyXSignature } from "./signatures";

const enc = new TextEncoder();
const body = enc.encode('{"trip":"T-1"}');

async function hex(secret: string, message: string) {
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(message)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("X-Signature", () => {
  it("accepts the HMAC of '<t>.<raw body>' inside the window and refuses everything else", async () => {
    const now = 1_800_000_000;
    const good = `t=${now},s=sha256=${await hex("k", `${now}.${new TextDecoder().decode(body)}`)}`;
    expect(await verifyXSignature(good, body, "k", now)).toMatchObject({ ok: true, scheme: "x-signature", timestamp: now });
    expect((await verifyXSignature(good, body, "k", now + TOLERANCE_SECONDS + 1)).ok).toBe(false);
    expect((await verifyXSignature(good, body, "other", now)).ok).toBe(false);
    expect((await verifyXSignature(good, enc.encode('{"trip":"T-2"}'), "k", now)).ok).toBe(false);
    for (const bad of ["", "t=abc,s=sha256=00", `t=${now}`, `t=${now},s=md5=00`, `t=${now},s=sha256=zz`, `t=-1,s=sha256=00`]) {
      expect((await verifyXSignature(bad, body, "k", now)).ok, bad).toBe(false);
    }
  });
});

describe("Standard Webhooks", () => {
  it("accepts signatures made by the reference library, including one of several during rotation", async () => {
    const secret = "whsec_" + btoa("0123456789abcdef0123456789abcdef");
    const at = new Date(1_800_000_000_000);
    const signature = new Webhook(secret).sign("msg_1", at, new TextDecoder().decode(body));
    const headers = { id: "msg_1", timestamp: String(at.getTime() / 1000), signature: `v1,AAAA ${signature}` };
    expect(await verifyStandardWebhook(headers, body, secret, at.getTime() / 1000)).toMatchObject({ ok: true, id: "msg_1" });
    expect((await verifyStandardWebhook({ ...headers, id: "msg_2" }, body, secret, at.getTime() / 1000)).ok).toBe(false);
    expect((await verifyStandardWebhook(headers, body, secret, at.getTime() / 1000 + 301)).ok).toBe(false);
    expect((await verifyStandardWebhook({ ...headers, timestamp: "1e9" }, body, secret, at.getTime() / 1000)).ok).toBe(false);
  });
});
