// Which hosts a grant list covers: exact names (any port), host:port, and *.domain for the names under it.
import { describe, expect, it } from "vitest";
import { hostEntryCovers } from "../platform/destination";
import { grantProblem } from "./gateway";

describe("app host grants", () => {
  it("covers exact hosts on any port, host:port on that port only", () => {
    expect(grantProblem("https://erp.example.com/x", ["erp.example.com"])).toBeNull();
    expect(grantProblem("http://erp.example.com:8080/x", ["erp.example.com"])).toBeNull();
    expect(grantProblem("http://erp.example.com:8080/x", ["erp.example.com:9090"])).toContain("not granted");
    expect(grantProblem("https://other.example.com/", ["erp.example.com"])).toContain("not granted");
  });

  it("covers names under a *.domain entry, never the domain itself or look-alikes", () => {
    const declared = ["*.s4hana.cloud.sap"];
    expect(grantProblem("https://my401.s4hana.cloud.sap/sap/opu/odata", declared)).toBeNull();
    expect(grantProblem("https://a.b.s4hana.cloud.sap/", declared)).toBeNull();
    expect(grantProblem("https://s4hana.cloud.sap/", declared)).toContain("not granted");
    expect(grantProblem("https://evils4hana.cloud.sap/", declared)).toContain("not granted");
    expect(grantProblem("https://my401.s4hana.cloud.sap.evil.com/", declared)).toContain("not granted");
    expect(hostEntryCovers("*.example.com:8443", "a.example.com", "8443")).toBe(true);
    expect(hostEntryCovers("*.example.com:8443", "a.example.com", "443")).toBe(false);
  });
});
