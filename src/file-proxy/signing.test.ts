// Signed file-proxy URLs: what a signature binds, and what it refuses.
import { describe, expect, it } from "vitest";
import { canonicalText, fileUrl, fileUrlProblem, signFileUrl, type FileUrlClaims } from "./signing";

const KEY = "test-secrets-key-0123456789abcdef";
const now = Date.parse("2026-12-03T10:00:00Z");
const claims: FileUrlClaims = { tenantId: "t1", integrationId: "i1", useCaseSlug: "invoices", useCaseId: "uc1", params: { doc: "4711", kind: "pdf" }, exp: now / 1000 + 3600 };

describe("file-proxy URL signatures", () => {
  it("verifies its own signature until the expiry", async () => {
    const sig = await signFileUrl(KEY, claims);
    expect(await fileUrlProblem(KEY, claims, sig, now)).toBeNull();
    expect(await fileUrlProblem(KEY, claims, sig, (claims.exp + 1) * 1000)).toBe("expired");
  });

  it("binds tenant, integration, use case, every parameter and the expiry", async () => {
    const sig = await signFileUrl(KEY, claims);
    const changed: FileUrlClaims[] = [
      { ...claims, tenantId: "t2" },
      { ...claims, integrationId: "i2" },
      { ...claims, useCaseSlug: "contracts" },
      { ...claims, useCaseId: "uc2" },
      { ...claims, params: { doc: "4712", kind: "pdf" } },
      { ...claims, params: { doc: "4711" } },
      { ...claims, params: { ...claims.params, extra: "1" } },
      { ...claims, exp: claims.exp + 1 },
    ];
    for (const c of changed) expect(await fileUrlProblem(KEY, c, sig, now)).toBe("bad_signature");
    expect(await fileUrlProblem("another-secrets-key-0123456789abcd", claims, sig, now)).toBe("bad_signature");
    expect(await fileUrlProblem(KEY, claims, "not*base64", now)).toBe("bad_signature");
  });

  it("keeps values that contain separators apart", async () => {
    const a = canonicalText({ ...claims, params: { a: "1&b=2" } });
    const b = canonicalText({ ...claims, params: { a: "1", b: "2" } });
    expect(a).not.toBe(b);
    expect(canonicalText({ ...claims, params: { b: "2", a: "1" } })).toBe(b);
  });

  it("builds the download URL with the parameters in canonical order", async () => {
    const url = new URL(await fileUrl("https://edge.example.com", KEY, claims));
    expect(url.pathname).toBe("/v1/files/download");
    expect([...url.searchParams.keys()]).toEqual(["integration_id", "use_case_slug", "doc", "kind", "exp", "sig"]);
    expect(await fileUrlProblem(KEY, claims, url.searchParams.get("sig")!, now)).toBeNull();
  });

  it("verifies what a URL carries back, lone surrogates included (they travel as U+FFFD)", async () => {
    const odd: FileUrlClaims = { ...claims, params: { doc: "a\uD800b", name: "Zähler Ü/1&2" } };
    const url = new URL(await fileUrl("https://edge.example.com", KEY, odd));
    const back = Object.fromEntries([...url.searchParams].filter(([k]) => !["integration_id", "use_case_slug", "exp", "sig"].includes(k)));
    expect(back.doc).toBe("a\uFFFDb");
    expect(await fileUrlProblem(KEY, { ...odd, params: back }, url.searchParams.get("sig")!, now)).toBeNull();
  });
});
