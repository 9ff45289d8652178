// The live train-job view: a reducer over the event stream, and the data each chart draws.
import type { Schemas } from "../api/client";

export type Snapshot = Schemas["TrainJobSnapshot"];
export type Trial = Schemas["TrialOut"];

export interface LiveState {
  snapshot: Snapshot | null;
  connection: "connecting" | "live" | "ended" | "error";
  error: unknown;
  retrying: boolean; // after an error: whether the stream is being reopened (not after a 4xx)
  updates: number; // snapshots received: each is one change seen without reloading
}

export type LiveAction =
  | { type: "snapshot"; snapshot: Snapshot }
  | { type: "end" }
  | { type: "error"; error: unknown; retrying: boolean }
  | { type: "reconnect" };

export const initialLive: LiveState = { snapshot: null, connection: "connecting", error: null, retrying: false, updates: 0 };

export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case "snapshot":
      return { ...state, snapshot: action.snapshot, connection: "live", error: null, updates: state.updates + 1 };
    case "end":
      return { ...state, connection: "ended" };
    case "error":
      return { ...state, connection: "error", error: action.error, retrying: action.retrying };
    case "reconnect":
      return { ...state, connection: "connecting", error: null, retrying: false };
  }
}

export interface BestPoint {
  trial: number;
  score: number | null;
  best: number;
}

/** Best score so far against trial number, over the trials that have a score (optuna's history plot). */
export function bestSoFar(trials: readonly Trial[]): BestPoint[] {
  const scored = trials.filter((t) => t.score !== null && t.score !== undefined).sort((a, b) => a.no - b.no);
  const points: BestPoint[] = [];
  let best = -Infinity;
  for (const t of scored) {
    best = Math.max(best, t.score as number);
    points.push({ trial: t.no, score: t.score as number, best });
  }
  return points;
}

export interface ProfileRow {
  rate: number;
  accuracy: number;
  batchMs: number | null;
}

/** A finished trial's accuracy and batch time per slice rate, widest first; empty without a profile. */
export function profileRows(trial: Pick<Trial, "profile">): ProfileRow[] {
  const profile = (trial.profile ?? {}) as { rates?: unknown; accuracy?: unknown; batch_time_s?: unknown };
  const rates = Array.isArray(profile.rates) ? (profile.rates as number[]) : [];
  const accuracy = Array.isArray(profile.accuracy) ? (profile.accuracy as number[]) : [];
  const times = Array.isArray(profile.batch_time_s) ? (profile.batch_time_s as number[]) : [];
  return rates
    .map((rate, i) => ({
      rate,
      accuracy: accuracy[i] ?? NaN,
      batchMs: typeof times[i] === "number" ? times[i] * 1000 : null,
    }))
    .filter((row) => Number.isFinite(row.accuracy))
    .sort((a, b) => b.rate - a.rate);
}

export type EpochRow = { epoch: number } & Record<string, number>;

/** One row per epoch, one column per trial (`t<no>`), of `metric` from the trials' logged epochs. */
export function epochCurves(snapshot: Snapshot, trialIds: readonly string[], metric: string): EpochRow[] {
  const rows = new Map<number, EpochRow>();
  for (const id of trialIds) {
    const trial = snapshot.trials.find((t) => t.id === id);
    if (!trial) continue;
    for (const point of snapshot.epochs[id] ?? []) {
      const value = point.metrics[metric];
      if (typeof value !== "number") continue;
      const row = rows.get(point.epoch) ?? ({ epoch: point.epoch } as EpochRow);
      row[`t${trial.no}`] = value;
      rows.set(point.epoch, row);
    }
  }
  return [...rows.values()].sort((a, b) => a.epoch - b.epoch);
}

/** The metric names logged per epoch across the job (e.g. loss, held_out_accuracy). */
export function epochMetrics(snapshot: Snapshot): string[] {
  const names = new Set<string>();
  for (const points of Object.values(snapshot.epochs)) for (const p of points) for (const k of Object.keys(p.metrics)) names.add(k);
  return [...names].sort();
}

/** Knob names across trials, for the trial table and the comparison. */
export function knobNames(trials: readonly Trial[]): string[] {
  const names = new Set<string>();
  for (const t of trials) for (const k of Object.keys(t.knobs)) names.add(k);
  return [...names].sort();
}

/** The knobs worth a column: those whose values differ between trials (all of them while there is one). */
export function varyingKnobs(trials: readonly Trial[]): string[] {
  const names = knobNames(trials);
  if (trials.length < 2) return names;
  return names.filter((name) => new Set(trials.map((t) => JSON.stringify(t.knobs[name]))).size > 1);
}

export function isFinished(status: Trial["status"]): boolean {
  return status === "COMPLETED" || status === "ERRORED" || status === "TERMINATED";
}
