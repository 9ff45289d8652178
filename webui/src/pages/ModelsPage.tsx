import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { upload, type UploadProgress } from "../api/upload";
import { useUser } from "../auth";
import { Empty, ErrorBox, Loading, Pager, Section } from "../components/ui";
import { when } from "../lib/format";
import { MODEL_UPLOADERS } from "../lib/roles";
import { TASKS } from "./DatasetsPage";

const LIMIT = 20;

export function ModelsPage() {
  const user = useUser();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ["models", offset],
    queryFn: () => unwrap(api.GET("/models", { params: { query: { offset, limit: LIMIT } } })),
  });
  return (
    <>
      <h1>Models</h1>
      {MODEL_UPLOADERS.includes(user.role) ? <UploadModel /> : null}
      <Section title="Model templates you can use">
        <ErrorBox error={list.error} />
        {list.isPending ? <Loading /> : null}
        {list.data && list.data.total === 0 ? <Empty>No model templates.</Empty> : null}
        {list.data && list.data.items.length > 0 ? (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <caption className="sr-only">Model templates</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Task</th>
                  <th scope="col">Source</th>
                  <th scope="col">Class</th>
                  <th scope="col">Knobs</th>
                  <th scope="col">Access</th>
                  <th scope="col">Added</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((m) => (
                  <tr key={m.id}>
                    <td>{m.name}</td>
                    <td>{m.task}</td>
                    <td>{m.source === "BUILTIN" ? <span className="badge">built-in</span> : m.source}</td>
                    <td><code>{m.model_class}</code></td>
                    <td>{Object.keys(m.knob_config).join(", ")}</td>
                    <td>{m.access_right}</td>
                    <td>{when(m.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {list.data ? <Pager label="Models" offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} /> : null}
      </Section>
    </>
  );
}

function UploadModel() {
  const queries = useQueryClient();
  const [name, setName] = useState("");
  const [task, setTask] = useState(TASKS[0]);
  const [className, setClassName] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [accepted, setAccepted] = useState<Schemas["ModelOut"] | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.set("name", name);
    form.set("task", task);
    if (className) form.set("class_name", className);
    form.set("file", file);
    setError(null);
    setAccepted(null);
    setProgress({ loaded: 0, total: file.size });
    try {
      const model = await upload<Schemas["ModelOut"]>("/models", form, setProgress);
      setAccepted(model);
      await queries.invalidateQueries({ queryKey: ["models"] });
    } catch (caught) {
      setError(caught);
    } finally {
      setProgress(null);
    }
  }

  return (
    <Section title="Upload a model template">
      <form className="form inline" onSubmit={submit} aria-label="Upload a model template">
        <label>
          Name
          <input required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Task
          <select value={task} onChange={(e) => setTask(e.target.value)}>
            {TASKS.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Class name (optional)
          <input value={className} onChange={(e) => setClassName(e.target.value)} />
        </label>
        <label>
          Template (.py)
          <input type="file" required accept=".py" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <button type="submit" className="primary" disabled={progress !== null}>
          Upload and check
        </button>
      </form>
      {progress ? (
        <p role="status" className="muted">
          Uploading; the checker runs the template in a sandbox…
        </p>
      ) : null}
      {error ? (
        <div>
          <p>The checker's verdict: rejected.</p>
          <ErrorBox error={error} />
        </div>
      ) : null}
      {accepted ? (
        <div className="ok" role="status">
          The checker's verdict: accepted. <code>{accepted.model_class}</code> for {accepted.task}, knobs{" "}
          {Object.keys(accepted.knob_config).join(", ") || "none"}.
        </div>
      ) : null}
    </Section>
  );
}
