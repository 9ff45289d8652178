import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../api/client";
import { Empty, ErrorBox, Loading, Pager, Section, Status } from "../components/ui";
import { when } from "../lib/format";

const LIMIT = 20;
const LIVE = ["STARTED", "RUNNING"];

export function InferenceJobsPage() {
  const queries = useQueryClient();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ["inference_jobs", offset],
    queryFn: () => unwrap(api.GET("/inference_jobs", { params: { query: { offset, limit: LIMIT } } })),
    refetchInterval: 5000,
  });
  const stop = useMutation({
    mutationFn: ({ app, version }: { app: string; version: number }) =>
      unwrap(api.POST("/inference_jobs/{app}/{version}/stop", { params: { path: { app, version } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["inference_jobs"] }),
  });
  return (
    <>
      <h1>Inference jobs</h1>
      <p className="muted">Deploy a finished train job from its page; each app version serves its best trials.</p>
      <Section title="Your inference jobs">
        <ErrorBox error={list.error ?? stop.error} />
        {list.isPending ? <Loading /> : null}
        {list.data && list.data.total === 0 ? <Empty>Nothing deployed yet.</Empty> : null}
        {list.data && list.data.items.length > 0 ? (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <caption className="sr-only">Inference jobs</caption>
              <thead>
                <tr>
                  <th scope="col">App</th>
                  <th scope="col">Status</th>
                  <th scope="col">Workers</th>
                  <th scope="col">Predictor</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((job) => (
                  <tr key={job.id}>
                    <td><Link to={`/inference_jobs/${job.app}/${job.app_version}`}>{job.app} v{job.app_version}</Link></td>
                    <td><Status value={job.status} /></td>
                    <td>{job.workers}</td>
                    <td>{job.predictor_url ? <code>{job.predictor_url}</code> : "—"}</td>
                    <td>{when(job.created_at)}</td>
                    <td>
                      {LIVE.includes(job.status) ? (
                        <>
                          <Link to={`/try/${job.app}/${job.app_version}`}>Try it</Link>{" "}
                          <button type="button" aria-label={`Stop serving ${job.app} v${job.app_version}`}
                                  onClick={() => stop.mutate({ app: job.app, version: job.app_version })}>
                            Stop
                          </button>
                        </>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {list.data ? <Pager label="Inference jobs" offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} /> : null}
      </Section>
    </>
  );
}
