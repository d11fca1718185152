// Request templates: the mustache subset, URL-encoding, own properties only, budgets, and secrets
// that stay placeholders until the request is sent.
import { describe, expect, it } from "vitest";
import { renderTemplate, Secrets, TemplateError, templateNames, templateProblem } from "./template";

const view = {
  params: { document_id: "A/B 1&x=2", kind: "pdf" },
  steps: [{ status: 200, headers: { etag: '"v1"' }, body: { download_path: "/files/A%2FB", items: [{ id: 1 }, { id: 2 }] } }],
  env: {},
};

describe("request templates", () => {
  it("URL-encodes {{x}} in URLs, inserts {{{x}}} as it is, and writes text as it is", () => {
    expect(renderTemplate("https://a.example/docs/{{params.document_id}}?k={{params.kind}}", view, "url")).toBe("https://a.example/docs/A%2FB%201%26x%3D2?k=pdf");
    expect(renderTemplate("https://a.example{{{steps.0.body.download_path}}}", view, "url")).toBe("https://a.example/files/A%2FB");
    expect(renderTemplate("If-Match: {{steps.0.headers.etag}}", view, "text")).toBe('If-Match: "v1"');
    expect(renderTemplate("{{#steps.0.body.items}}[{{id}}]{{/steps.0.body.items}}{{^params.none}}-{{/params.none}}", view, "text")).toBe("[1][2]-");
    expect(renderTemplate("{{params.missing}}|{{steps.5.body}}", view, "text")).toBe("|");
  });

  it("reads own properties only and never calls anything", () => {
    expect(renderTemplate("{{params.kind.toString}}{{steps.map}}{{params.hasOwnProperty}}", view, "text")).toBe("");
    expect(templateProblem("{{params.constructor}}")).toContain("constructor");
    expect(templateProblem("{{a.__proto__.b}}")).toContain("__proto__");
  });

  it("refuses partials, changed delimiters and unclosed sections", () => {
    expect(templateProblem("{{> header}}")).toContain("partials");
    expect(templateProblem("{{=<% %>=}}")).toContain("delimiters");
    expect(templateProblem("{{#a}}")).toMatch(/unclosed/i);
    expect(templateProblem("x".repeat(9000))).toContain("longer");
    expect(() => renderTemplate("{{> header}}", view, "text")).toThrow(TemplateError);
  });

  it("never names the whole environment or auth, so every secret a template reads is listed", () => {
    for (const t of ["{{env}}", "{{{env}}}", "{{#env}}{{KEY}}{{/env}}", "{{^auth}}x{{/auth}}", "{{& auth}}"]) expect(templateProblem(t)).toContain("every value at once");
    expect(templateProblem("{{env.KEY}}{{auth.access_token}}")).toBeNull();
  });

  it("writes objects as JSON and stops output at its limit while rendering", () => {
    expect(renderTemplate("{{{params}}}", { params: Object.assign(Object.create(null), { a: "1" }) }, "text")).toBe('{"a":"1"}');
    const big = "x".repeat(100_000);
    expect(() => renderTemplate("{{#a}}{{{b}}}{{/a}}", { a: [1, 2, 3], b: big }, "text")).toThrow(/longer than/);
    expect(() => renderTemplate("{{#a}}0123456789{{/a}}", { a: Array.from({ length: 900 }, (_, i) => i) }, "text")).not.toThrow();
  });

  it("stops nested sections that would multiply", () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    expect(() => renderTemplate("{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}", { a: items }, "text")).toThrow(/section renders/);
  });

  it("keeps secrets as placeholders until reveal, encoding them where the template does", () => {
    const secrets = new Secrets();
    const env = { USER: secrets.hold("ü ser"), PASS: secrets.hold("p&ss/word") };
    const url = renderTemplate("https://a.example/login?u={{env.USER}}&p={{{env.PASS}}}", { env }, "url", secrets);
    expect(url).not.toContain("ser");
    expect(secrets.mask(url)).toBe("https://a.example/login?u=*****&p=*****");
    expect(secrets.reveal(url)).toBe("https://a.example/login?u=%C3%BC%20ser&p=p&ss/word");
    const header = renderTemplate("{{env.USER}}:{{env.PASS}}", { env }, "text", secrets);
    expect(secrets.reveal(header)).toBe("ü ser:p&ss/word");
    // A secret value that reached a message another way is masked too.
    expect(secrets.mask("archive said p&ss/word")).toBe("archive said *****");
    // Another request's placeholders (another nonce) are not this one's.
    expect(new Secrets().reveal(url)).toBe(url);
  });

  it("lists the names a template reads", () => {
    expect(templateNames("{{{env.BASE}}}/x/{{params.id}}{{#env.FLAG}}?f=1{{/env.FLAG}}")).toEqual(["env.BASE", "params.id", "env.FLAG"]);
  });
});
