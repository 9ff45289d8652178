import { describe, expect, it } from "vitest";
import { addSnapshot, bucketDelta, bucketQuantile, emptyHistory, MAX_POINTS, planMix, type MetricsSnapshot } from "./serving";

function snap(at: number, served: number, dropped: number, correct: number, requests: number,
              buckets: number[][] = []): MetricsSnapshot {
  return {
    job_id: "j", status: "RUNNING", collected_at: at,
    predictor: { up: true, requests: { "200": requests }, latency_buckets: buckets } as MetricsSnapshot["predictor"],
    workers: [],
    totals: { served, dropped, expired: 0, expected_correct: correct, effective_accuracy: null, minibatches_by_rate: { "0.5": 3, "1": 5 } },
  };
}

describe("addSnapshot", () => {
  it("turns counter increases into per-second rates and interval effective accuracy", () => {
    let history = addSnapshot(emptyHistory, snap(100, 0, 0, 0, 0));
    expect(history.points).toEqual([]);
    history = addSnapshot(history, snap(102, 90, 10, 81, 4, [[0.01, 2], [0.1, 4]]));
    expect(history.points).toHaveLength(1);
    expect(history.points[0]).toMatchObject({ t: 2, requestsPerS: 2, servedPerS: 45, droppedPerS: 5 });
    expect(history.points[0].effectiveAccuracy).toBeCloseTo(0.81);
    expect(history.points[0].p50Ms).toBeCloseTo(10);
  });
  it("reads a counter reset (a restarted service) as a fresh start, and ignores stale snapshots", () => {
    let history = addSnapshot(emptyHistory, snap(10, 100, 0, 90, 10));
    history = addSnapshot(history, snap(11, 5, 0, 4, 1));
    expect(history.points[0].servedPerS).toBe(5);
    const again = addSnapshot(history, snap(11, 6, 0, 5, 1));
    expect(again.points).toHaveLength(1);
  });
  it("keeps a bounded history", () => {
    let history = emptyHistory;
    for (let i = 0; i <= MAX_POINTS + 10; i++) history = addSnapshot(history, snap(i, i, 0, i, i));
    expect(history.points).toHaveLength(MAX_POINTS);
    expect(history.points[history.points.length - 1].t).toBe(MAX_POINTS + 10);
  });
});

describe("buckets", () => {
  it("interpolates quantiles like Prometheus", () => {
    const b = [[0.1, 50], [0.2, 90], [0.5, 100]];
    expect(bucketQuantile(0.5, b)).toBeCloseTo(0.1);
    expect(bucketQuantile(0.7, b)).toBeCloseTo(0.15);
    expect(bucketQuantile(0.5, [[0.1, 0]])).toBeNull();
    expect(bucketQuantile(0.5, [])).toBeNull();
  });
  it("subtracts the previous snapshot's buckets", () => {
    expect(bucketDelta(snap(2, 0, 0, 0, 0, [[0.1, 5], [0.2, 9]]), snap(1, 0, 0, 0, 0, [[0.1, 2], [0.2, 3]])))
      .toEqual([[0.1, 3], [0.2, 6]]);
  });
});

describe("planMix", () => {
  it("lists mini-batches per rate, widest first", () => {
    expect(planMix(snap(0, 0, 0, 0, 0))).toEqual([{ rate: "1", minibatches: 5 }, { rate: "0.5", minibatches: 3 }]);
  });
});
