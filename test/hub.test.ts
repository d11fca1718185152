// The Integration Hub's server side (src/hub/routes.ts): the shell and the client bundle come from the
// Worker with a strict Content-Security-Policy; nothing under /hub loads from elsewhere. The pages
// themselves are tested in a real browser by `npm run test:ui` (test-ui/).
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const get = (path: string) => exports.default.fetch(new Request(`http://erp-edge.test${path}`));

describe("/hub", () => {
  it("serves the shell with only same-origin scripts and styles, and the security headers", async () => {
    const res = await get("/hub");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toBe(CSP);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/hub/assets/main.js"></script>');
    // No inline script or style: the CSP would block them, and they are not needed.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("serves the client bundle from the static assets with the same headers", async () => {
    for (const [path, type] of [["/hub/assets/main.js", /javascript/], ["/hub/assets/main.css", /text\/css/], ["/hub/assets/favicon.svg", /image\/svg/]] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toMatch(type);
      expect(res.headers.get("content-security-policy"), path).toBe(CSP);
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      await res.arrayBuffer();
    }
  });

  it("answers unknown Hub paths with the error envelope, still under the CSP", async () => {
    for (const path of ["/hub/assets/nope.js", "/hub/assets/%2e%2e%2fmain.js", "/hub/other"]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-security-policy"), path).toBe(CSP);
      expect(await res.json()).toMatchObject({ code: "NOT_FOUND" });
    }
    // Dot segments resolve before routing: nothing outside the assets folder is reachable.
    const escape = await get("/hub/assets/../../wrangler.toml");
    expect(escape.status).toBe(404);
    expect(await escape.json()).toMatchObject({ code: "NOT_FOUND" });
    // The assets folder is only reachable under /hub/assets/: the API's routes are unchanged.
    expect((await get("/")).headers.get("content-type")).toMatch(/json/);
  });
});
