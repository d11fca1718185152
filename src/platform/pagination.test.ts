// Cursors: opaque, round-tripping, and every cursor we did not issue is a 400, never a 500.
import { describe, expect, it } from "vitest";
import { AppError } from "./errors";
import { decodeCursor, decodeVersionCursor, encodeCursor, encodeVersionCursor, toPage } from "./pagination";

const ULID = "01JD0000000000000000000000";

describe("cursors", () => {
  it("round-trip ids and versions, and keep the two kinds apart", () => {
    expect(decodeCursor(encodeCursor(ULID))).toBe(ULID);
    expect(decodeVersionCursor(encodeVersionCursor(7))).toBe(7);
    expect(() => decodeCursor(encodeVersionCursor(7))).toThrow(AppError);
    expect(() => decodeVersionCursor(encodeCursor(ULID))).toThrow(AppError);
    expect(decodeCursor(undefined)).toBe("");
  });

  it("refuse forged, malformed and hostile cursors with INVALID_CURSOR", () => {
    const forged = [
      "not base64 !",
      btoa("not json"),
      btoa("null"),
      btoa(JSON.stringify({ after: "' OR 1=1 --" })),
      btoa(JSON.stringify({ after: ULID.toLowerCase() })),
      btoa(JSON.stringify({ __proto__: { after: ULID } })),
      btoa(JSON.stringify({ version: -1 })),
      btoa(JSON.stringify({ version: 1.5 })),
    ];
    for (const cursor of forged) {
      let code: string | undefined;
      try {
        decodeCursor(cursor);
        decodeVersionCursor(cursor);
      } catch (err) {
        code = (err as AppError).code;
      }
      expect(code, cursor).toBe("INVALID_CURSOR");
    }
  });

  it("pages limit+1 rows into a page and the next cursor", () => {
    const rows = ["01JD0000000000000000000001", "01JD0000000000000000000002", "01JD0000000000000000000003"].map((id) => ({ id }));
    const page = toPage(rows, 2, (r) => r.id);
    expect(page.items).toEqual(rows.slice(0, 2).map((r) => r.id));
    expect(decodeCursor(page.next_cursor!)).toBe(rows[1]!.id);
    expect(toPage(rows, 3, (r) => r.id).next_cursor).toBeNull();
  });
});
