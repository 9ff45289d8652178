import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { upload, type UploadProgress } from "../api/upload";
import { DatasetSchema } from "../components/DatasetSchema";
import { Empty, ErrorBox, Loading, Pager, Section } from "../components/ui";
import { bytes, when } from "../lib/format";

export const TASKS = ["IMAGE_CLASSIFICATION", "TABULAR_CLASSIFICATION"];
const LIMIT = 20;

export function DatasetsPage() {
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const list = useQuery({
    queryKey: ["datasets", offset],
    queryFn: () => unwrap(api.GET("/datasets", { params: { query: { offset, limit: LIMIT } } })),
  });
  return (
    <>
      <h1>Datasets</h1>
      <UploadDataset />
      <Section title="Your datasets">
        <ErrorBox error={list.error} />
        {list.isPending ? <Loading /> : null}
        {list.data && list.data.total === 0 ? <Empty>No datasets yet: upload one above.</Empty> : null}
        {list.data && list.data.items.length > 0 ? (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <caption className="sr-only">Datasets</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Task</th>
                  <th scope="col">Format</th>
                  <th scope="col">Samples</th>
                  <th scope="col">Classes</th>
                  <th scope="col">Size</th>
                  <th scope="col">Uploaded</th>
                  <th scope="col">Id</th>
                  <th scope="col">Schema</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((d) => (
                  <tr key={d.id}>
                    <td>{d.name}</td>
                    <td>{d.task}</td>
                    <td>{d.format}</td>
                    <td>{d.num_samples}</td>
                    <td>{d.num_classes}</td>
                    <td>{bytes(d.size_bytes)}</td>
                    <td>{when(d.created_at)}</td>
                    <td><code>{d.id.slice(0, 8)}</code></td>
                    <td>
                      <button type="button" aria-label={`Schema of ${d.name}`} aria-expanded={open === d.id}
                              onClick={() => setOpen(open === d.id ? null : d.id)}>
                        {d.schema_status}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {open && list.data?.items.some((d) => d.id === open) ? (
          <DatasetSchema datasetId={open} name={list.data.items.find((d) => d.id === open)!.name} />
        ) : null}
        {list.data ? <Pager label="Datasets" offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} /> : null}
      </Section>
    </>
  );
}

function UploadDataset() {
  const queries = useQueryClient();
  const [name, setName] = useState("");
  const [task, setTask] = useState(TASKS[0]);
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Schemas["DatasetOut"] | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.set("name", name);
    form.set("task", task);
    form.set("file", file);
    setError(null);
    setDone(null);
    setProgress({ loaded: 0, total: file.size });
    try {
      const dataset = await upload<Schemas["DatasetOut"]>("/datasets", form, setProgress);
      setDone(dataset);
      await queries.invalidateQueries({ queryKey: ["datasets"] });
    } catch (caught) {
      setError(caught);
    } finally {
      setProgress(null);
    }
  }

  return (
    <Section title="Upload a dataset">
      <form className="form inline" onSubmit={submit} aria-label="Upload a dataset">
        <label>
          Name
          <input required maxLength={255} value={name} onChange={(e) => setName(e.target.value)} />
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
          File (.zip of class folders, .npz or .csv)
          <input type="file" required accept=".zip,.npz,.csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <button type="submit" className="primary" disabled={progress !== null}>
          Upload
        </button>
      </form>
      {progress ? (
        <label className="progress">
          Uploading {bytes(progress.loaded)} of {bytes(progress.total)}
          <progress max={progress.total || 1} value={progress.loaded} />
        </label>
      ) : null}
      <ErrorBox error={error} />
      {done ? (
        <p className="ok" role="status">
          Uploaded {done.name}: {done.num_samples} samples, {done.num_classes} classes.
        </p>
      ) : null}
    </Section>
  );
}
