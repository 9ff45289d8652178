import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../api/client";
import { useUser } from "../auth";
import { PoolPanel } from "../components/PoolPanel";
import { Section, Status, ErrorBox } from "../components/ui";
import { when } from "../lib/format";
import { DEVELOPERS } from "../lib/roles";

export function OverviewPage() {
  const user = useUser();
  const developer = DEVELOPERS.includes(user.role);
  const jobs = useQuery({
    queryKey: ["train_jobs", 0, 5],
    queryFn: () => unwrap(api.GET("/train_jobs", { params: { query: { offset: 0, limit: 5 } } })),
    enabled: developer,
  });
  return (
    <>
      <h1>Overview</h1>
      <Section title="Who am I">
        <dl className="facts">
          <dt>E-mail</dt>
          <dd>{user.email}</dd>
          <dt>Role</dt>
          <dd>{user.role}</dd>
          <dt>User id</dt>
          <dd><code>{user.id}</code></dd>
          <dt>Member since</dt>
          <dd>{when(user.created_at)}</dd>
        </dl>
      </Section>
      {developer ? (
        <Section title="Recent train jobs">
          <ErrorBox error={jobs.error} />
          {jobs.data && jobs.data.items.length === 0 ? (
            <p className="empty">
              No train jobs yet. <Link to="/datasets">Upload a dataset</Link>, then <Link to="/train_jobs">start one</Link>.
            </p>
          ) : (
            <ul className="plain">
              {jobs.data?.items.map((job) => (
                <li key={job.id}>
                  <Link to={`/train_jobs/${job.app}/${job.app_version}`}>
                    {job.app} v{job.app_version}
                  </Link>{" "}
                  <Status value={job.status} /> <span className="muted">{when(job.created_at)}</span>
                </li>
              ))}
            </ul>
          )}
        </Section>
      ) : null}
      {developer ? <PoolPanel /> : null}
      {developer ? null : (
        <p className="muted">Your role uses applications through their predictors; ask an admin for a developer role to train.</p>
      )}
    </>
  );
}
