// The shared train pool (GET /pool): who holds its workers, each user's share, and why (cost-aware score or
// the fairness floor). Shown only when the platform runs one (EASEL_TRAIN_POOL_WORKERS > 0).
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, Section } from "./ui";

const percent = (share: number) => `${Math.round(share * 100)} %`;

export function PoolPanel() {
  const pool = useQuery({
    queryKey: ["pool"],
    queryFn: () => unwrap(api.GET("/pool")),
    refetchInterval: 5000,
  });
  if (pool.error) return <ErrorBox error={pool.error} />;
  const data = pool.data;
  if (!data || !data.enabled) return null;
  const users = data.users ?? [];
  return (
    <Section title="Train pool">
      <p>
        {data.live_workers} of {data.size} workers live, policy <code>{data.policy}</code>, {data.assignments} trials
        assigned.
      </p>
      <p className="muted">Fairness floor — {data.fairness_floor}</p>
      {users.length === 0 ? (
        <p className="empty">No jobs have used the pool yet.</p>
      ) : (
        <div className="table-wrap" tabIndex={0}>
          <table>
            <caption className="muted">Each user's share of the pool</caption>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Workers now</th>
                <th scope="col">Trials assigned</th>
                <th scope="col">Share of the last 100</th>
                <th scope="col">By the floor</th>
                <th scope="col">Last reason</th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.user_id}>
                  <td><code>{u.user_id.slice(0, 8)}</code></td>
                  <td>{u.workers_now}</td>
                  <td>{u.assignments}</td>
                  <td>{percent(u.recent_share)}</td>
                  <td>{u.floor_assignments}</td>
                  <td>
                    {u.last_reason ?? "—"}
                    {u.last_rate != null ? ` (${u.last_rate.toPrecision(3)} points/s)` : ""}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}
