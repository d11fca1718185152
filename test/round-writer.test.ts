// The RoundWriter against real EntityStore objects: a round's store calls keep each group's order.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { entityStore, GroupStopped, RoundWriter } from "../src/entities/service";
import type { EntityUpdateInput } from "../src/entities/store-do";

const tenantId = "tenant-round-writer";
const update = (eventId: string, uniqueIds: Record<string, string>): EntityUpdateInput => ({
  updateId: `${eventId}#0`, eventId, tenantId, schema: "account", uniqueIds, attributes: {}, mode: "upsert",
});

describe("RoundWriter", () => {
  it("sends a later event's reference lookup only after its group's earlier events finished", async () => {
    const [existing] = await entityStore(env, tenantId, "account").apply([update("e-seed", { customer_number: "A1" })]);
    const writer = new RoundWriter(env, ["g", "g"]);
    // Event 1 asks for the account by an email that event 0 is about to give it; both in one turn.
    let found: { entityId: string } | { ambiguous: string[] } | undefined;
    const lookup = writer.forEvent(1).resolve(tenantId, "account", { email: "ap@example.com" }, null).then((r) => (found = r));
    const [claimed] = await writer.forEvent(0).commit([update("e-claim", { customer_number: "A1", email: "ap@example.com" })], { tenantId, readings: [] });
    // Not sent while event 0 is still running: it could still write more.
    expect(found).toBeUndefined();
    writer.finished(0, true);
    await lookup;
    expect(claimed).toMatchObject({ entityId: (existing as { entityId: string }).entityId, operation: "updated" });
    expect(found).toEqual({ entityId: (existing as { entityId: string }).entityId });
  });

  it("refuses a later event's commit once an earlier event of its group failed", async () => {
    const writer = new RoundWriter(env, ["g", "g", "h"]);
    const later = writer.forEvent(1).commit([update("e-later", { customer_number: "B1" })], { tenantId, readings: [] });
    const other = writer.forEvent(2).commit([update("e-other", { customer_number: "B2" })], { tenantId, readings: [] });
    writer.finished(0, false);
    await expect(later).rejects.toBeInstanceOf(GroupStopped);
    // Another group goes on.
    expect((await other)[0]).toMatchObject({ operation: "created" });
    expect(await entityStore(env, tenantId, "account").find({ customer_number: "B1" }, "", 10)).toEqual([]);
  });
});
