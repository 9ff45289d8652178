// The app's registered model versions: number, stage and the trial behind it, each with its stage history
// (who moved it, when, why; the history is append-only). Shown on the app's train job page.
import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { Empty, ErrorBox, Loading, Section, Status } from "./ui";
import { when } from "../lib/format";

type Version = Schemas["VersionOut"];

export function ModelVersions({ app }: { app: string }) {
  const list = useQuery({
    queryKey: ["versions", app],
    queryFn: () => unwrap(api.GET("/apps/{app}/versions", { params: { path: { app }, query: { limit: 50 } } })),
    refetchInterval: 10000,
  });
  return (
    <Section title="Model versions">
      {list.isPending ? <Loading /> : list.isError ? <ErrorBox error={list.error} /> : list.data.items.length === 0 ? (
        <Empty>No registered version yet: `easel versions register {app}` registers the best trial.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0}>
          <table aria-label={`Model versions of ${app} and their stage history`}>
            <thead>
              <tr><th scope="col">Version</th><th scope="col">Stage</th><th scope="col">Trial</th><th scope="col">History</th></tr>
            </thead>
            <tbody>
              {list.data.items.map((v) => <VersionRow key={v.id} version={v} />)}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

function VersionRow({ version }: { version: Version }) {
  return (
    <tr>
      <td>#{version.number}</td>
      <td><Status value={version.stage} /></td>
      <td><code>{version.trial_id.slice(0, 8)}</code></td>
      <td>
        <ol className="history">
          {version.history.map((h, i) => (
            <li key={i}>
              {when(h.at)}: {h.from_stage ?? "—"} → {h.to_stage}
              {h.reason ? ` (${h.reason})` : ""}
            </li>
          ))}
        </ol>
      </td>
    </tr>
  );
}
