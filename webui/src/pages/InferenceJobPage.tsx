import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { PlanMixChart, ServingLines } from "../components/charts";
import { Empty, ErrorBox, Loading, Section, Status } from "../components/ui";
import { num, pct, when } from "../lib/format";
import { addSnapshot, emptyHistory, planMix, type ServingHistory } from "../lib/serving";

const LIVE = ["STARTED", "RUNNING"];

export function InferenceJobPage() {
  const params = useParams();
  const app = params.app ?? "";
  const version = Number(params.version);
  const path = { params: { path: { app, version } } };
  const queries = useQueryClient();
  const job = useQuery({
    queryKey: ["inference_job", app, version],
    queryFn: () => unwrap(api.GET("/inference_jobs/{app}/{version}", path)),
    refetchInterval: (q) => (q.state.data && LIVE.includes(q.state.data.status) ? 2000 : false),
  });
  const serving = job.data && LIVE.includes(job.data.status);
  const metrics = useQuery({
    queryKey: ["inference_metrics", app, version],
    queryFn: () => unwrap(api.GET("/inference_jobs/{app}/{version}/metrics", path)),
    refetchInterval: serving ? 1000 : false, // the floor the dashboard allows itself for polling
    enabled: Boolean(serving),
  });
  const [history, setHistory] = useState<ServingHistory>(emptyHistory);
  useEffect(() => {
    if (metrics.data) setHistory((h) => addSnapshot(h, metrics.data));
  }, [metrics.data]);
  const stop = useMutation({
    mutationFn: () => unwrap(api.POST("/inference_jobs/{app}/{version}/stop", path)),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["inference_job", app, version] }),
  });
  const latest = metrics.data;
  const last = history.points[history.points.length - 1];

  return (
    <>
      <h1>
        Serving {app} v{version} {job.data ? <Status value={job.data.status} /> : null}
      </h1>
      <ErrorBox error={job.error ?? stop.error} />
      {job.isPending ? <Loading /> : null}
      {job.data ? (
        <Section title="Inference job" actions={serving ? (
          <span className="actions">
            <Link to={`/try/${app}/${version}`}>Try it</Link>
            <button type="button" onClick={() => stop.mutate()} disabled={stop.isPending}>Stop serving</button>
          </span>
        ) : null}>
          <dl className="facts">
            <dt>Workers</dt><dd>{job.data.workers}</dd>
            <dt>Predictor</dt><dd>{job.data.predictor_url ? <code>{job.data.predictor_url}</code> : "not running"}</dd>
            <dt>Trials served</dt><dd>{job.data.trial_ids.map((id) => id.slice(0, 8)).join(", ")}</dd>
            <dt>Created</dt><dd>{when(job.data.created_at)}</dd>
            <dt>Stopped</dt><dd>{when(job.data.stopped_at)}</dd>
          </dl>
        </Section>
      ) : null}
      {serving ? (
        <>
          <ErrorBox error={metrics.error} />
          <section className="stats" aria-label="Serving now">
            <Stat label="Requests/s" value={num(last?.requestsPerS, 2)} />
            <Stat label="Served/s" value={num(last?.servedPerS, 1)} />
            <Stat label="Dropped/s" value={num(last?.droppedPerS, 1)} />
            <Stat label="Effective accuracy (all time)" value={pct(latest?.totals.effective_accuracy)} />
            <Stat label="p50 latency (all time)" value={latest?.predictor?.latency_p50_s != null ? `${(latest.predictor.latency_p50_s * 1000).toFixed(1)} ms` : "—"} />
            <Stat label="p99 latency (all time)" value={latest?.predictor?.latency_p99_s != null ? `${(latest.predictor.latency_p99_s * 1000).toFixed(1)} ms` : "—"} />
            <Stat label="Served / dropped (all time)" value={latest ? `${latest.totals.served} / ${latest.totals.dropped + latest.totals.expired}` : "—"} />
          </section>
          <div className="charts">
            <Section title="Throughput">
              {history.points.length === 0 ? <Empty>Collecting…</Empty> : (
                <ServingLines points={history.points} caption="Requests, served and dropped instances per second"
                              lines={[{ key: "requestsPerS", name: "requests/s" }, { key: "servedPerS", name: "served/s" },
                                      { key: "droppedPerS", name: "dropped/s" }]} />
              )}
            </Section>
            <Section title="Effective accuracy">
              {history.points.length === 0 ? <Empty>Collecting…</Empty> : (
                <ServingLines points={history.points} caption="Effective accuracy per interval" domain={[0, 1]}
                              lines={[{ key: "effectiveAccuracy", name: "effective accuracy" }]} />
              )}
            </Section>
            <Section title="Latency">
              {history.points.length === 0 ? <Empty>Collecting…</Empty> : (
                <ServingLines points={history.points} caption="Request latency per interval (ms)"
                              lines={[{ key: "p50Ms", name: "p50" }, { key: "p99Ms", name: "p99" }]} />
              )}
            </Section>
            <Section title="Plan mix">
              {latest && planMix(latest).some((r) => r.minibatches > 0) ? <PlanMixChart rows={planMix(latest)} /> : (
                <Empty>No mini-batch run yet.</Empty>
              )}
            </Section>
          </div>
          <Section title="Workers">
            {latest && latest.workers.length > 0 ? (
              <div className="table-wrap" tabIndex={0}>
                <table>
                  <caption className="sr-only">Inference workers</caption>
                  <thead>
                    <tr>
                      <th scope="col">Worker</th><th scope="col">Up</th><th scope="col">Served</th><th scope="col">Dropped</th>
                      <th scope="col">Expired</th><th scope="col">Queued</th><th scope="col">t_i estimates (ms)</th>
                    </tr>
                  </thead>
                  <tbody>
                    {latest.workers.map((w) => (
                      <tr key={w.service_id}>
                        <td>{w.name}</td>
                        <td>{w.up ? "yes" : <span title={w.error ?? ""}>no: {w.error}</span>}</td>
                        <td>{w.instances?.served ?? 0}</td>
                        <td>{w.instances?.dropped ?? 0}</td>
                        <td>{w.instances?.expired ?? 0}</td>
                        <td>{w.queued_instances}</td>
                        <td>{Object.entries(w.batch_time_estimate_s ?? {}).map(([r, s]) => `${r}: ${(s * 1000).toFixed(2)}`).join(", ") || "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : <Empty>No worker reported yet.</Empty>}
          </Section>
        </>
      ) : null}
    </>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="stat">
      <span className="stat-label">{label}</span>
      <span className="stat-value">{value}</span>
    </div>
  );
}
