import { useMemo, useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { Candidates } from "../components/Candidates";
import { BestSoFarChart, CompareProfilesChart, EpochChart, ProfileChart } from "../components/charts";
import { ModelVersions } from "../components/ModelVersions";
import { Empty, ErrorBox, Loading, Section, Status } from "../components/ui";
import { knob, num, pct, when } from "../lib/format";
import {
  bestSoFar, epochCurves, epochMetrics, knobNames, profileRows, varyingKnobs, type Snapshot, type Trial,
} from "../lib/liveJob";
import { useLiveTrainJob } from "../lib/useLiveTrainJob";

const MAX_COMPARE = 4;

/** Unit-wise training progress ("3/8 · shard 1", "· paused at epoch 3" while the promoting ASHA holds it at a
 * rung), or a dash for a trial trained in one piece. */
function units(trial: Trial): string {
  const progress = trial.progress;
  if (!progress) return "—";
  const paused = progress.paused_at_epoch != null ? ` · paused at epoch ${progress.paused_at_epoch}` : "";
  return `${progress.units_done ?? 0}/${progress.units_total ?? 0} · shard ${progress.shard ?? 0}${paused}`;
}

export function TrainJobPage() {
  const params = useParams();
  const app = params.app ?? "";
  const version = Number(params.version);
  const live = useLiveTrainJob(app, version);
  const stop = useMutation({
    mutationFn: () => unwrap(api.POST("/train_jobs/{app}/{version}/stop", { params: { path: { app, version } } })),
  });
  const snapshot = live.snapshot;
  return (
    <>
      <h1>
        Train job {app} v{version} {snapshot ? <Status value={snapshot.job.status} /> : null}
      </h1>
      <p className="muted" role="status" aria-live="polite">
        {live.connection === "live" ? `Live: ${live.updates} update${live.updates === 1 ? "" : "s"} received` : null}
        {live.connection === "ended" ? `Finished after ${live.updates} live update${live.updates === 1 ? "" : "s"}` : null}
        {live.connection === "connecting" ? "Connecting to live updates…" : null}
        {live.connection === "error" ? (live.retrying ? "Live updates interrupted; reconnecting…" : "No live updates") : null}
      </p>
      {live.connection === "error" ? <ErrorBox error={live.error} /> : null}
      {!snapshot ? (live.connection === "error" ? null : <Loading />) : (
        <JobBody snapshot={snapshot} onStop={() => stop.mutate()} stopping={stop.isPending} stopError={stop.error} />
      )}
    </>
  );
}

function JobBody({ snapshot, onStop, stopping, stopError }: {
  snapshot: Snapshot; onStop: () => void; stopping: boolean; stopError: unknown;
}) {
  const { job, trials } = snapshot;
  const [compare, setCompare] = useState<string[]>([]);
  const [focus, setFocus] = useState<string | null>(null);
  const [metric, setMetric] = useState("held_out_accuracy");
  const knobs = useMemo(() => knobNames(trials), [trials]);
  const tuned = useMemo(() => varyingKnobs(trials), [trials]);
  const best = useMemo(() => bestSoFar(trials), [trials]);
  const metrics = epochMetrics(snapshot);
  const shownMetric = metrics.includes(metric) ? metric : metrics[0];
  const curveIds = compare.length > 0 ? compare : trials.slice(-8).map((t) => t.id);
  const curves = shownMetric ? epochCurves(snapshot, curveIds, shownMetric) : [];
  const profiled = trials.filter((t) => profileRows(t).length > 0);
  const bestTrial = [...profiled].sort((a, b) => (b.score ?? 0) - (a.score ?? 0))[0];
  const focused = trials.find((t) => t.id === focus && profileRows(t).length > 0) ?? bestTrial;
  const running = job.status === "STARTED" || job.status === "RUNNING";

  const toggle = (id: string) =>
    setCompare((ids) => (ids.includes(id) ? ids.filter((x) => x !== id) : ids.length < MAX_COMPARE ? [...ids, id] : ids));

  return (
    <>
      <Section title="Job" actions={running ? (
        <button type="button" onClick={onStop} disabled={stopping}>Stop job</button>
      ) : null}>
        <dl className="facts">
          <dt>Task</dt><dd>{job.task}</dd>
          <dt>Models</dt><dd>{job.sub_train_jobs.map((s) => `${s.model_name} (${s.status})`).join(", ")}</dd>
          <dt>Budget</dt><dd>{Object.entries(job.budget).map(([k, v]) => `${k}=${String(v)}`).join(", ")}</dd>
          <dt>Created</dt><dd>{when(job.created_at)}</dd>
          <dt>Trials</dt><dd>{snapshot.trials_total}</dd>
        </dl>
        <ErrorBox error={stopError} />
        {job.status === "COMPLETED" || job.status === "STOPPED" ? <Deploy app={job.app} version={job.app_version} /> : null}
      </Section>
      <Candidates raw={job.candidates} />
      <ModelVersions app={job.app} />
      <Section title="Trials">
        {trials.length === 0 ? <Empty>No trials yet: the advisor proposes the first one shortly.</Empty> : (
          <div className="table-wrap" tabIndex={0}>
            <table className="trials">
              <caption className="sr-only">Trials of this job</caption>
              <thead>
                <tr>
                  <th scope="col">Compare</th>
                  <th scope="col">#</th>
                  <th scope="col">Model</th>
                  <th scope="col">Status</th>
                  <th scope="col">Score</th>
                  <th scope="col">Epochs</th>
                  <th scope="col">Units</th>
                  <th scope="col">Worker</th>
                  {tuned.map((k) => <th scope="col" key={k}>{k}</th>)}
                  <th scope="col">Profile</th>
                </tr>
              </thead>
              <tbody>
                {trials.map((t) => (
                  <tr key={t.id} data-status={t.status}>
                    <td>
                      <input type="checkbox" aria-label={`Compare trial ${t.no}`} checked={compare.includes(t.id)}
                             disabled={!compare.includes(t.id) && compare.length >= MAX_COMPARE}
                             onChange={() => toggle(t.id)} />
                    </td>
                    <td>{t.no}</td>
                    <td>{t.model_name}</td>
                    <td><Status value={t.status} /></td>
                    <td>{num(t.score, 4)}</td>
                    <td>{snapshot.epochs[t.id]?.length ?? 0}</td>
                    <td>{units(t)}</td>
                    <td>{snapshot.workers[t.id] ?? t.progress?.worker ?? "—"}</td>
                    {tuned.map((k) => <td key={k}>{k in t.knobs ? knob(t.knobs[k]) : "—"}</td>)}
                    <td>
                      {profileRows(t).length > 0 ? (
                        <button type="button" onClick={() => setFocus(t.id)} aria-label={`Show the profile of trial ${t.no}`}>
                          Profile
                        </button>
                      ) : "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <div className="charts">
        <Section title="Optimisation history">
          {best.length === 0 ? <Empty>No scored trial yet.</Empty> : <BestSoFarChart points={best} />}
        </Section>
        <Section title="Epoch curves" actions={metrics.length > 1 ? (
          <label className="compact">
            Metric{" "}
            <select value={shownMetric} onChange={(e) => setMetric(e.target.value)}>
              {metrics.map((m) => <option key={m}>{m}</option>)}
            </select>
          </label>
        ) : null}>
          {curves.length === 0 ? <Empty>No epoch finished yet.</Empty> : (
            <EpochChart rows={curves} metric={shownMetric ?? ""}
                        series={curveIds.map((id) => trials.find((t) => t.id === id)).filter(Boolean).map((t) => `t${(t as Trial).no}`)} />
          )}
        </Section>
        <Section title="Accuracy and batch time per slice rate">
          {focused ? (
            <>
              <ProfileChart rows={profileRows(focused)} title={`Trial ${focused.no} (${focused.model_name}): accuracy and batch time per slice rate`} />
              <ProfileTable trial={focused} />
            </>
          ) : <Empty>Shown once a trial finishes and is profiled at every slice rate.</Empty>}
        </Section>
      </div>
      {compare.length >= 2 ? <Compare trials={compare.map((id) => trials.find((t) => t.id === id)!).filter(Boolean)}
                                      snapshot={snapshot} knobs={knobs} /> : (
        <p className="muted">Tick 2 to {MAX_COMPARE} trials to compare them side by side.</p>
      )}
    </>
  );
}

function ProfileTable({ trial }: { trial: Trial }) {
  return (
    <table className="compact-table">
      <caption className="sr-only">Profile of trial {trial.no}</caption>
      <thead>
        <tr><th scope="col">Slice rate</th><th scope="col">Accuracy</th><th scope="col">Batch time</th></tr>
      </thead>
      <tbody>
        {profileRows(trial).map((row) => (
          <tr key={row.rate}>
            <td>{row.rate}</td><td>{pct(row.accuracy)}</td><td>{row.batchMs === null ? "—" : `${row.batchMs.toFixed(2)} ms`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Compare({ trials, snapshot, knobs }: { trials: Trial[]; snapshot: Snapshot; knobs: string[] }) {
  const rates = [...new Set(trials.flatMap((t) => profileRows(t).map((r) => r.rate)))].sort((a, b) => b - a);
  const data = rates.map((rate) => {
    const row: Record<string, number> = { rate };
    for (const t of trials) {
      const found = profileRows(t).find((r) => r.rate === rate);
      if (found) row[`t${t.no}`] = found.accuracy;
    }
    return row;
  });
  return (
    <Section title={`Comparing ${trials.length} trials`}>
      <div className="table-wrap" tabIndex={0}>
        <table>
          <caption className="sr-only">Trials side by side</caption>
          <thead>
            <tr><th scope="col">Field</th>{trials.map((t) => <th scope="col" key={t.id}>Trial {t.no}</th>)}</tr>
          </thead>
          <tbody>
            <tr><th scope="row">Model</th>{trials.map((t) => <td key={t.id}>{t.model_name}</td>)}</tr>
            <tr><th scope="row">Status</th>{trials.map((t) => <td key={t.id}>{t.status}</td>)}</tr>
            <tr><th scope="row">Score</th>{trials.map((t) => <td key={t.id}>{num(t.score, 4)}</td>)}</tr>
            <tr><th scope="row">Epochs</th>{trials.map((t) => <td key={t.id}>{snapshot.epochs[t.id]?.length ?? 0}</td>)}</tr>
            {knobs.map((k) => (
              <tr key={k}><th scope="row">{k}</th>{trials.map((t) => <td key={t.id}>{k in t.knobs ? knob(t.knobs[k]) : "—"}</td>)}</tr>
            ))}
            {rates.map((rate) => (
              <tr key={rate}>
                <th scope="row">accuracy at {rate}</th>
                {trials.map((t) => <td key={t.id}>{pct(profileRows(t).find((r) => r.rate === rate)?.accuracy)}</td>)}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data.length > 0 ? <CompareProfilesChart data={data} series={trials.map((t) => `t${t.no}`)} /> : null}
    </Section>
  );
}

function Deploy({ app, version }: { app: string; version: number }) {
  const navigate = useNavigate();
  const [workers, setWorkers] = useState("2");
  const deploy = useMutation({
    mutationFn: () => unwrap(api.POST("/inference_jobs", { body: { app, app_version: version, workers: Number(workers) } })),
    onSuccess: () => navigate(`/inference_jobs/${app}/${version}`),
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    deploy.mutate();
  }
  return (
    <form className="form inline" onSubmit={submit} aria-label="Deploy">
      <label>
        Inference workers
        <input type="number" min={1} max={64} required value={workers} onChange={(e) => setWorkers(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={deploy.isPending}>Deploy the best trial</button>
      <Link to={`/inference_jobs/${app}/${version}`}>Serving status</Link>
      <ErrorBox error={deploy.error} />
    </form>
  );
}
