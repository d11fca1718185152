// geofence_dwell through the SDK's harness, as erp-edge runs it before the geofence-events mapping
// (`npx erp-edge app test blueprints/telematics/app`): enter/exit pairs per vehicle and geofence.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppRunError, runAction } from "@erp-edge/apps-sdk";
import app, { MAX_OPEN_VISITS, visitsKey } from "../src/index";

const geofence = (transition: string, ts: string, extra: Record<string, unknown> = {}, id = `evt_${transition}_${ts}`) => ({
  event: "alert.geofence.event",
  id,
  data: { vehicle_id: "V-1042", geofence_id: "GF-CUST-77", transition, ts, trip_id: "T-9001", ...extra },
});

/** Runs the action with a shared state, returning its output and log lines. */
const dwell = (input: unknown, state: Map<string, unknown>) => runAction<unknown, any>(app, "geofence_dwell", input, { state });

describe("geofence_dwell", () => {
  test("an exit gets the dwell time since its enter, and the visit is closed", async () => {
    const state = new Map<string, unknown>();
    const enter = geofence("enter", "2025-10-29T13:58:40Z");
    assert.deepEqual((await dwell(enter, state)).output, enter);
    assert.deepEqual(state.get(visitsKey("V-1042")), { open: [{ geofence_id: "GF-CUST-77", entered_at: "2025-10-29T13:58:40.000Z", event_id: enter.id }] });

    const exit = geofence("EXIT", "2025-10-29T14:46:10Z");
    const { output, logs } = await dwell(exit, state);
    assert.deepEqual(output, { ...exit, data: { ...exit.data, dwell_seconds: 2850, entered_at: "2025-10-29T13:58:40.000Z" } });
    assert.deepEqual(logs, [{ level: "info", message: "vehicle V-1042, geofence GF-CUST-77: dwell 2850 s" }]);
    // Nothing is kept for a vehicle outside every geofence.
    assert.equal(state.size, 0);
  });

  test("pairs visits per vehicle and geofence, interleaved", async () => {
    const state = new Map<string, unknown>();
    await dwell(geofence("enter", "2025-10-29T08:00:00Z", { geofence_id: "GF-DEPOT" }), state);
    await dwell(geofence("enter", "2025-10-29T08:00:30Z", { vehicle_id: "V-2001", geofence_id: "GF-DEPOT" }), state);
    await dwell(geofence("enter", "2025-10-29T08:10:00Z", { geofence_id: "GF-FUEL" }), state);
    const fuel = await dwell(geofence("exit", "2025-10-29T08:25:00Z", { geofence_id: "GF-FUEL" }), state);
    const depot = await dwell(geofence("exit", "2025-10-29T09:00:00Z", { geofence_id: "GF-DEPOT" }), state);
    const other = await dwell(geofence("exit", "2025-10-29T08:05:30Z", { vehicle_id: "V-2001", geofence_id: "GF-DEPOT" }), state);
    assert.deepEqual([fuel.output.data.dwell_seconds, depot.output.data.dwell_seconds, other.output.data.dwell_seconds], [900, 3600, 300]);
    assert.equal(state.size, 0);
  });

  test("an exit it cannot pair passes unchanged, with the reason logged", async () => {
    const state = new Map<string, unknown>();
    const orphan = geofence("exit", "2025-10-29T14:46:10Z");
    const { output, logs } = await dwell(orphan, state);
    assert.deepEqual(output, orphan);
    assert.match(logs[0]!.message, /exit without an open visit/);

    // An exit stamped before its enter (clock skew) leaves the visit open for the real exit.
    await dwell(geofence("enter", "2025-10-29T10:00:00Z"), state);
    const early = await dwell(geofence("exit", "2025-10-29T09:59:00Z"), state);
    assert.equal(early.output.data.dwell_seconds, undefined);
    assert.match(early.logs[0]!.message, /before the enter/);
    assert.equal((await dwell(geofence("exit", "2025-10-29T10:01:00Z"), state)).output.data.dwell_seconds, 60);

    // Neither enter nor exit, or a time that does not parse: unchanged.
    for (const odd of [geofence("dwell", "2025-10-29T10:00:00Z"), geofence("enter", "yesterday")]) {
      const run = await dwell(odd, state);
      assert.deepEqual(run.output, odd);
      assert.equal(run.logs[0]!.level, "warn");
    }
    assert.equal(state.size, 0);
  });

  test("a repeated enter event is recognised; a new enter without an exit restarts the visit", async () => {
    const state = new Map<string, unknown>();
    const enter = geofence("enter", "2025-10-29T10:00:00Z");
    await dwell(enter, state);
    assert.deepEqual((await dwell(enter, state)).logs, []);
    const again = await dwell(geofence("enter", "2025-10-29T11:00:00Z"), state);
    assert.match(again.logs[0]!.message, /entered again without an exit/);
    assert.equal((await dwell(geofence("exit", "2025-10-29T11:30:00Z"), state)).output.data.dwell_seconds, 1800);
  });

  test(`keeps at most ${MAX_OPEN_VISITS} open visits per vehicle, dropping the oldest`, async () => {
    const state = new Map<string, unknown>();
    for (let i = 0; i <= MAX_OPEN_VISITS; i++) await dwell(geofence("enter", "2025-10-29T10:00:00Z", { geofence_id: `GF-${i}` }), state);
    const open = (state.get(visitsKey("V-1042")) as { open: { geofence_id: string }[] }).open;
    assert.equal(open.length, MAX_OPEN_VISITS);
    assert.equal(open[0]!.geofence_id, "GF-1");
  });

  test("ids that name prototype keys are data, not object keys", async () => {
    const state = new Map<string, unknown>();
    await dwell(geofence("enter", "2025-10-29T10:00:00Z", { vehicle_id: "__proto__", geofence_id: "constructor" }), state);
    const exit = await dwell(geofence("exit", "2025-10-29T10:00:05Z", { vehicle_id: "__proto__", geofence_id: "constructor" }), state);
    assert.equal(exit.output.data.dwell_seconds, 5);
    assert.equal(({} as Record<string, unknown>).open, undefined);
  });

  test("refuses an event without a vehicle or geofence id", async () => {
    await assert.rejects(dwell({ event: "alert.geofence.event", data: { geofence_id: "GF-1", transition: "enter", ts: "2025-10-29T10:00:00Z" } }, new Map()), (err: unknown) => {
      assert.ok(err instanceof AppRunError);
      assert.equal(err.code, "APP_INPUT_INVALID");
      assert.deepEqual(err.issues.map((i) => i.path), ["data.vehicle_id"]);
      return true;
    });
  });
});
