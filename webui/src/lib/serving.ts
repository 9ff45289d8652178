// The live serving panel: successive metric snapshots from admin become rates over each interval.
import type { Schemas } from "../api/client";

export type MetricsSnapshot = Schemas["InferenceMetricsOut"];

export interface ServingPoint {
  t: number; // seconds since the first snapshot
  requestsPerS: number;
  servedPerS: number;
  droppedPerS: number;
  effectiveAccuracy: number | null; // over this interval: expected correct / instances answered
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface ServingHistory {
  first: number | null;
  last: MetricsSnapshot | null;
  points: ServingPoint[];
}

export const MAX_POINTS = 120;
export const emptyHistory: ServingHistory = { first: null, last: null, points: [] };

function sum(record: Record<string, number> | undefined): number {
  return Object.values(record ?? {}).reduce((a, b) => a + b, 0);
}

/** A counter's increase; a service restart resets counters, and then the new total is the increase. */
function increase(now: number, before: number): number {
  return now >= before ? now - before : now;
}

/** Quantile of cumulative (bound, count) buckets as Prometheus interpolates them; null without counts. */
export function bucketQuantile(q: number, buckets: ReadonlyArray<readonly number[]>): number | null {
  if (buckets.length === 0) return null;
  const total = buckets[buckets.length - 1][1];
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets as ReadonlyArray<readonly [number, number]>) {
    if (count >= rank) {
      if (count === lowerCount) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

/** The latency buckets observed between two snapshots (their difference). */
export function bucketDelta(now: MetricsSnapshot, before: MetricsSnapshot | null): [number, number][] {
  const current = (now.predictor?.latency_buckets ?? []) as [number, number][];
  const previous = new Map((before?.predictor?.latency_buckets ?? []).map(([b, c]) => [b, c]));
  const restarted = current.some(([b, c]) => c < (previous.get(b) ?? 0));
  return current.map(([bound, count]) => [bound, restarted ? count : count - (previous.get(bound) ?? 0)]);
}

/** Fold a new snapshot into the history: one point per interval, at most MAX_POINTS kept. */
export function addSnapshot(history: ServingHistory, now: MetricsSnapshot): ServingHistory {
  const before = history.last;
  const first = history.first ?? now.collected_at;
  if (!before || now.collected_at <= before.collected_at) return { first, last: now, points: history.points };
  const dt = now.collected_at - before.collected_at;
  const served = increase(now.totals.served, before.totals.served);
  const dropped = increase(now.totals.dropped + now.totals.expired, before.totals.dropped + before.totals.expired);
  const correct = increase(now.totals.expected_correct, before.totals.expected_correct);
  const requests = increase(sum(now.predictor?.requests), sum(before.predictor?.requests));
  const window = bucketDelta(now, before);
  const p50 = bucketQuantile(0.5, window);
  const p99 = bucketQuantile(0.99, window);
  const point: ServingPoint = {
    t: Math.round((now.collected_at - first) * 10) / 10,
    requestsPerS: requests / dt,
    servedPerS: served / dt,
    droppedPerS: dropped / dt,
    effectiveAccuracy: served + dropped > 0 ? correct / (served + dropped) : null,
    p50Ms: p50 === null ? null : p50 * 1000,
    p99Ms: p99 === null ? null : p99 * 1000,
  };
  return { first, last: now, points: [...history.points, point].slice(-MAX_POINTS) };
}

/** The plan mix (mini-batches per slice rate) as chart rows, widest first. */
export function planMix(snapshot: MetricsSnapshot): { rate: string; minibatches: number }[] {
  return Object.entries(snapshot.totals.minibatches_by_rate)
    .map(([rate, minibatches]) => ({ rate, minibatches }))
    .sort((a, b) => Number(b.rate) - Number(a.rate));
}
