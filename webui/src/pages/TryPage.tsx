import { useEffect, useRef, useState, type FormEvent, type PointerEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { Explain } from "../components/Explain";
import { Empty, ErrorBox, Loading, Section } from "../components/ui";
import { pct } from "../lib/format";
import { downsample, imageSize, toGrey, toInstance } from "../lib/pixels";

const SIDE = 192;

export function TryPage() {
  const params = useParams();
  const navigate = useNavigate();
  const running = useQuery({
    queryKey: ["inference_jobs", "running"],
    queryFn: () => unwrap(api.GET("/inference_jobs", { params: { query: { limit: 200 } } })),
  });
  const choices = (running.data?.items ?? []).filter((j) => j.status === "RUNNING" || j.status === "DEGRADED");
  const current = params.app ? `${params.app}/${params.version}` : "";
  return (
    <>
      <h1>Try it</h1>
      <Section title="Choose a deployed app">
        <ErrorBox error={running.error} />
        {running.isPending ? <Loading /> : choices.length === 0 ? <Empty>Nothing is serving: deploy a finished train job first.</Empty> : (
          <label>
            App version
            <select value={current} onChange={(e) => navigate(e.target.value ? `/try/${e.target.value}` : "/try")}>
              <option value="">— choose —</option>
              {choices.map((j) => (
                <option key={j.id} value={`${j.app}/${j.app_version}`}>{j.app} v{j.app_version}</option>
              ))}
            </select>
          </label>
        )}
      </Section>
      {params.app ? <Predict app={params.app} version={Number(params.version)} /> : null}
    </>
  );
}

function Predict({ app, version }: { app: string; version: number }) {
  const path = { params: { path: { app, version } } };
  const info = useQuery({
    queryKey: ["predictor", app, version],
    queryFn: () => unwrap(api.GET("/inference_jobs/{app}/{version}/predictor", path)),
  });
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const [deadline, setDeadline] = useState(1.0);
  const [copies, setCopies] = useState(1);
  const [drawn, setDrawn] = useState(false);
  const [sent, setSent] = useState<unknown>(null);
  const predict = useMutation({
    mutationFn: (body: Schemas["TryPredictIn"]) => unwrap(api.POST("/inference_jobs/{app}/{version}/predict", { ...path, body })),
  });

  const clear = () => {
    const context = canvas.current?.getContext("2d");
    if (!context) return;
    context.fillStyle = "#000";
    context.fillRect(0, 0, SIDE, SIDE);
    setDrawn(false);
  };
  useEffect(clear, []);

  const point = (event: PointerEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    return [((event.clientX - box.left) * SIDE) / box.width, ((event.clientY - box.top) * SIDE) / box.height];
  };
  const down = (event: PointerEvent<HTMLCanvasElement>) => {
    const context = canvas.current?.getContext("2d");
    if (!context) return;
    drawing.current = true;
    const [x, y] = point(event);
    context.beginPath();
    context.moveTo(x, y);
  };
  const move = (event: PointerEvent<HTMLCanvasElement>) => {
    const context = canvas.current?.getContext("2d");
    if (!drawing.current || !context) return;
    const [x, y] = point(event);
    context.strokeStyle = "#fff";
    context.lineWidth = 18;
    context.lineCap = "round";
    context.lineTo(x, y);
    context.stroke();
    setDrawn(true);
  };
  const loadFile = (file: File | undefined) => {
    if (!file) return;
    const image = new Image();
    image.onload = () => {
      const context = canvas.current?.getContext("2d");
      if (!context) return;
      clear();
      context.drawImage(image, 0, 0, SIDE, SIDE);
      setDrawn(true);
      URL.revokeObjectURL(image.src);
    };
    image.src = URL.createObjectURL(file);
  };

  function submit(event: FormEvent) {
    event.preventDefault();
    const context = canvas.current?.getContext("2d");
    const shape = info.data?.input_shape;
    if (!context || !shape) return;
    const { h, w } = imageSize(shape);
    const pixels = context.getImageData(0, 0, SIDE, SIDE).data;
    const instance = toInstance(downsample(toGrey(pixels, SIDE, SIDE), SIDE, SIDE, w, h), shape);
    setSent(instance);
    predict.mutate({ instances: Array.from({ length: copies }, () => instance), deadline_s: deadline });
  }

  return (
    <>
      <Section title={`Predict with ${app} v${version}`}>
        <ErrorBox error={info.error} />
        {info.data ? (
          <p className="muted">
            Input shape [{info.data.input_shape?.join(", ") ?? "unknown"}], slice rates {info.data.slice_rates.join(", ")},
            {" "}{info.data.workers_ready} of {info.data.workers} workers ready.
          </p>
        ) : null}
        <form className="try" onSubmit={submit} aria-label="Predict">
          <div className="canvas-box">
            <canvas ref={canvas} width={SIDE} height={SIDE} aria-label="Drawing area: draw a digit with the mouse or a finger"
                    role="img" onPointerDown={down} onPointerMove={move} onPointerUp={() => (drawing.current = false)}
                    onPointerLeave={() => (drawing.current = false)} />
            <button type="button" onClick={clear}>Clear</button>
          </div>
          <div className="form">
            <label>
              Or an image file
              <input type="file" accept="image/*" onChange={(e) => loadFile(e.target.files?.[0])} />
            </label>
            <label>
              Deadline: {deadline.toFixed(2)} s
              <input type="range" min={0.01} max={5} step={0.01} value={deadline}
                     onChange={(e) => setDeadline(Number(e.target.value))} />
            </label>
            <label>
              Copies of the image in one request
              <input type="number" min={1} max={256} value={copies} onChange={(e) => setCopies(Math.max(1, Math.min(256, Number(e.target.value) || 1)))} />
            </label>
            <button type="submit" className="primary" disabled={!info.data?.input_shape || predict.isPending || !drawn}>
              {predict.isPending ? "Predicting…" : "Predict"}
            </button>
          </div>
        </form>
        <ErrorBox error={predict.error} />
      </Section>
      {predict.data ? <Answer answer={predict.data} /> : null}
      {predict.data && sent !== null ? (
        <Explain key={predict.submittedAt} app={app} version={version} instance={sent}
                 usedRate={predict.data.predictions.find((p) => p.status === "served")?.slice_rate ?? null} />
      ) : null}
    </>
  );
}

function Answer({ answer }: { answer: Schemas["PredictOut"] }) {
  const first = answer.predictions.find((p) => p.status === "served");
  const totals = answer.totals as { served?: number; dropped?: number; elapsed_s?: number; workers?: Record<string, Record<string, unknown>> };
  const probabilities = first?.prediction?.probabilities ?? [];
  return (
    <Section title="Answer">
      <p className="answer" role="status">
        {first ? <>Label <strong data-testid="label">{String(first.prediction?.label)}</strong> at slice rate {first.slice_rate},
          {" "}{(first.latency_s * 1000).toFixed(1)} ms</> : "Every instance was dropped: the deadline was too tight."}
        {" "}— {totals.served ?? 0} served, {totals.dropped ?? 0} dropped in {((totals.elapsed_s ?? 0) * 1000).toFixed(1)} ms.
      </p>
      {probabilities.length > 0 ? (
        <ol className="probabilities" aria-label="Class probabilities" start={0}>
          {probabilities.map((p, i) => (
            <li key={i}>
              <span className="prob-label">{i}</span>
              <meter min={0} max={1} value={p} aria-label={`class ${i}`} />
              <span>{pct(p)}</span>
            </li>
          ))}
        </ol>
      ) : null}
      <div className="table-wrap" tabIndex={0}>
        <table>
          <caption className="sr-only">Per instance</caption>
          <thead>
            <tr><th scope="col">Instance</th><th scope="col">Status</th><th scope="col">Label</th><th scope="col">Slice rate</th>
              <th scope="col">Latency</th><th scope="col">Worker</th></tr>
          </thead>
          <tbody>
            {answer.predictions.map((p) => (
              <tr key={p.index} data-status={p.status}>
                <td>{p.index}</td><td>{p.status}</td><td>{p.prediction ? String(p.prediction.label) : "—"}</td>
                <td>{p.slice_rate ?? "—"}</td><td>{(p.latency_s * 1000).toFixed(1)} ms</td><td>{p.worker ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Section>
  );
}
