import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Empty, ErrorBox, Loading, Pager, Section, Status } from "../components/ui";
import { when } from "../lib/format";
import { checkTrainJob, type FormErrors, type TrainJobForm } from "../lib/forms";
import { TASKS } from "./DatasetsPage";

const LIMIT = 20;
const LIVE = ["STARTED", "RUNNING"];

export function TrainJobsPage() {
  const queries = useQueryClient();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ["train_jobs", offset, LIMIT],
    queryFn: () => unwrap(api.GET("/train_jobs", { params: { query: { offset, limit: LIMIT } } })),
    refetchInterval: 5000,
  });
  const stop = useMutation({
    mutationFn: ({ app, version }: { app: string; version: number }) =>
      unwrap(api.POST("/train_jobs/{app}/{version}/stop", { params: { path: { app, version } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["train_jobs"] }),
  });
  return (
    <>
      <h1>Train jobs</h1>
      <CreateTrainJob />
      <Section title="Your train jobs">
        <ErrorBox error={list.error ?? stop.error} />
        {list.isPending ? <Loading /> : null}
        {list.data && list.data.total === 0 ? <Empty>No train jobs yet: create one above.</Empty> : null}
        {list.data && list.data.items.length > 0 ? (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <caption className="sr-only">Train jobs</caption>
              <thead>
                <tr>
                  <th scope="col">App</th>
                  <th scope="col">Status</th>
                  <th scope="col">Models</th>
                  <th scope="col">Trials per model</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((job) => (
                  <tr key={job.id}>
                    <td>
                      <Link to={`/train_jobs/${job.app}/${job.app_version}`}>
                        {job.app} v{job.app_version}
                      </Link>
                    </td>
                    <td><Status value={job.status} /></td>
                    <td>
                      {job.sub_train_jobs.map((s) => s.model_name).join(", ")}
                      {job.candidates ? <span className="muted"> (chosen by schema)</span> : null}
                    </td>
                    <td>{String(job.budget.MODEL_TRIAL_COUNT ?? "—")}</td>
                    <td>{when(job.created_at)}</td>
                    <td>
                      {LIVE.includes(job.status) ? (
                        <button type="button" aria-label={`Stop ${job.app} v${job.app_version}`}
                                onClick={() => stop.mutate({ app: job.app, version: job.app_version })}>
                          Stop
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {list.data ? <Pager label="Train jobs" offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} /> : null}
      </Section>
    </>
  );
}

export function CreateTrainJob() {
  const navigate = useNavigate();
  const [form, setForm] = useState<TrainJobForm>({
    app: "", task: TASKS[0], trainDatasetId: "", valDatasetId: "", modelIds: [], trials: "2", workers: "1", hours: "0.5",
  });
  const [errors, setErrors] = useState<FormErrors>({});
  const datasets = useQuery({
    queryKey: ["datasets", "all"],
    queryFn: () => unwrap(api.GET("/datasets", { params: { query: { limit: 200 } } })),
  });
  const models = useQuery({
    queryKey: ["models", "all"],
    queryFn: () => unwrap(api.GET("/models", { params: { query: { limit: 200 } } })),
  });
  const create = useMutation({
    mutationFn: (body: Schemas["TrainJobIn"]) => unwrap(api.POST("/train_jobs", { body })),
    onSuccess: (job) => navigate(`/train_jobs/${job.app}/${job.app_version}`),
  });
  const set = <K extends keyof TrainJobForm>(key: K, value: TrainJobForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const forTask = <T extends { task: string }>(items: T[] | undefined): T[] =>
    (items ?? []).filter((i) => i.task === form.task);

  function submit(event: FormEvent) {
    event.preventDefault();
    const checked = checkTrainJob(form);
    if ("errors" in checked) {
      setErrors(checked.errors);
      return;
    }
    setErrors({});
    create.mutate(checked.body);
  }

  const field = (key: keyof TrainJobForm) =>
    errors[key] ? { "aria-invalid": true as const, "aria-describedby": `err-${key}` } : {};
  const hint = (key: keyof TrainJobForm) =>
    errors[key] ? <span className="field-error" id={`err-${key}`}>{errors[key]}</span> : null;

  return (
    <Section title="Start a train job">
      <form className="form grid" onSubmit={submit} aria-label="Start a train job" noValidate>
        <label>
          App name
          <input value={form.app} onChange={(e) => set("app", e.target.value)} {...field("app")} />
          {hint("app")}
        </label>
        <label>
          Task
          <select value={form.task} onChange={(e) => set("task", e.target.value)}>
            {TASKS.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Training dataset
          <select value={form.trainDatasetId} onChange={(e) => set("trainDatasetId", e.target.value)} {...field("trainDatasetId")}>
            <option value="">— choose —</option>
            {forTask(datasets.data?.items).map((d) => (
              <option key={d.id} value={d.id}>{d.name}</option>
            ))}
          </select>
          {hint("trainDatasetId")}
        </label>
        <label>
          Validation dataset
          <select value={form.valDatasetId} onChange={(e) => set("valDatasetId", e.target.value)} {...field("valDatasetId")}>
            <option value="">— choose —</option>
            {forTask(datasets.data?.items).map((d) => (
              <option key={d.id} value={d.id}>{d.name}</option>
            ))}
          </select>
          {hint("valDatasetId")}
        </label>
        <fieldset {...field("modelIds")} aria-describedby={errors.modelIds ? "err-modelIds" : "models-hint"}>
          <legend>Models (optional)</legend>
          <p className="muted" id="models-hint">
            {form.modelIds.length === 0
              ? "None ticked: Easel trains every template you can use whose declared schema fits the training "
                + "data; the job's page lists them, and why the others were passed over."
              : `${form.modelIds.length} ticked: only ${form.modelIds.length === 1 ? "it is" : "these are"} trained.`}
          </p>
          {forTask(models.data?.items).map((model) => {
            return (
              <label key={model.id} className="check">
                <input type="checkbox" checked={form.modelIds.includes(model.id)}
                       onChange={(e) => set("modelIds", e.target.checked ? [...form.modelIds, model.id]
                         : form.modelIds.filter((id) => id !== model.id))} />
                {model.name}
              </label>
            );
          })}
          {hint("modelIds")}
        </fieldset>
        <label>
          Trials per model
          <input inputMode="numeric" value={form.trials} onChange={(e) => set("trials", e.target.value)} {...field("trials")} />
          {hint("trials")}
        </label>
        <label>
          Workers per model
          <input inputMode="numeric" value={form.workers} onChange={(e) => set("workers", e.target.value)} {...field("workers")} />
          {hint("workers")}
        </label>
        <label>
          Time budget (hours)
          <input inputMode="decimal" value={form.hours} onChange={(e) => set("hours", e.target.value)} {...field("hours")} />
          {hint("hours")}
        </label>
        <div>
          <button type="submit" className="primary" disabled={create.isPending}>
            Start training
          </button>
        </div>
      </form>
      <ErrorBox error={datasets.error ?? models.error ?? create.error} />
    </Section>
  );
}
