import { describe, expect, it } from "vitest";
import { varyingKnobs, bestSoFar, epochCurves, epochMetrics, initialLive, liveReducer, profileRows, type Snapshot, type Trial } from "./liveJob";

function trial(no: number, score: number | null, extra: Partial<Trial> = {}): Trial {
  return {
    id: `id-${no}`, no, score, status: score === null ? "RUNNING" : "COMPLETED", knobs: { lr: 0.01 * no },
    model_id: "m", model_name: "SlicedMLP", sub_train_job_id: "s", attempts: 1, error: null, has_parameters: true,
    profile: null, created_at: "2026-01-01T00:00:00Z", started_at: null, stopped_at: null, ...extra,
  } as Trial;
}

function snapshot(trials: Trial[], epochs: Snapshot["epochs"] = {}): Snapshot {
  return { job: { status: "RUNNING" } as Snapshot["job"], trials, trials_total: trials.length, trials_limit: 1000, epochs, workers: {} };
}

describe("liveReducer", () => {
  it("counts snapshots, and keeps the last one through an error", () => {
    const first = snapshot([trial(1, null)]);
    let state = liveReducer(initialLive, { type: "snapshot", snapshot: first });
    expect(state).toMatchObject({ connection: "live", updates: 1, snapshot: first });
    state = liveReducer(state, { type: "error", error: "network", retrying: true });
    expect(state).toMatchObject({ connection: "error", error: "network", retrying: true, snapshot: first });
    state = liveReducer(state, { type: "reconnect" });
    expect(state).toMatchObject({ connection: "connecting", error: null });
    const second = snapshot([trial(1, 0.5)]);
    state = liveReducer(state, { type: "snapshot", snapshot: second });
    expect(state.updates).toBe(2);
    expect(state.snapshot?.trials[0].score).toBe(0.5);
    expect(liveReducer(state, { type: "end" }).connection).toBe("ended");
  });
});

describe("bestSoFar", () => {
  it("runs the maximum over scored trials in trial order, skipping unscored ones", () => {
    const points = bestSoFar([trial(3, 0.7), trial(1, 0.5), trial(2, null), trial(4, 0.6)]);
    expect(points).toEqual([
      { trial: 1, score: 0.5, best: 0.5 },
      { trial: 3, score: 0.7, best: 0.7 },
      { trial: 4, score: 0.6, best: 0.7 },
    ]);
    expect(bestSoFar([])).toEqual([]);
  });
});

describe("profileRows", () => {
  it("pairs rates with accuracy and batch time in ms, widest first", () => {
    const rows = profileRows({ profile: { rates: [0.25, 1.0, 0.5], accuracy: [0.6, 0.9, 0.8], batch_time_s: [0.001, 0.004, 0.002] } });
    expect(rows.map((r) => r.rate)).toEqual([1.0, 0.5, 0.25]);
    expect(rows[0]).toEqual({ rate: 1.0, accuracy: 0.9, batchMs: 4 });
    expect(rows[2].batchMs).toBeCloseTo(1);
  });
  it("is empty without a profile and tolerates missing times", () => {
    expect(profileRows({ profile: null })).toEqual([]);
    expect(profileRows({ profile: { rates: [1.0], accuracy: [0.9] } })).toEqual([{ rate: 1.0, accuracy: 0.9, batchMs: null }]);
  });
});

describe("epochCurves", () => {
  it("builds one row per epoch with a column per trial", () => {
    const snap = snapshot([trial(1, null), trial(2, null)], {
      "id-1": [{ epoch: 1, metrics: { loss: 1.0 } }, { epoch: 2, metrics: { loss: 0.5 } }],
      "id-2": [{ epoch: 1, metrics: { loss: 0.8, held_out_accuracy: 0.7 } }],
    });
    expect(epochCurves(snap, ["id-1", "id-2"], "loss")).toEqual([
      { epoch: 1, t1: 1.0, t2: 0.8 },
      { epoch: 2, t1: 0.5 },
    ]);
    expect(epochCurves(snap, ["id-2"], "held_out_accuracy")).toEqual([{ epoch: 1, t2: 0.7 }]);
    expect(epochMetrics(snap)).toEqual(["held_out_accuracy", "loss"]);
  });
});

describe("varyingKnobs", () => {
  it("keeps the knobs that differ between trials, or all for one trial", () => {
    const a = trial(1, 0.5, { knobs: { lr: 0.1, depth: 2, seed: 0 } });
    const b = trial(2, 0.6, { knobs: { lr: 0.2, depth: 2, seed: 0 } });
    expect(varyingKnobs([a, b])).toEqual(["lr"]);
    expect(varyingKnobs([a])).toEqual(["depth", "lr", "seed"]);
  });
});
