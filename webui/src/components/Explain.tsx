// The try-it page's explanation view: ask admin to explain one instance (Grad-CAM or LIME, at the width the
// prediction used or at full width), then show the label it explained and the overlay PNG. The PNG route needs
// the bearer token, so it is fetched as a blob through the typed client and shown through an object URL.
import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { ErrorBox, Loading, Section } from "./ui";

/** The part of admin's explanation answer this view reads (the route's 200 body is untyped in the schema). */
export interface Explanation {
  id: string;
  method: string;
  slice_rate: number | null;
  label: unknown;
  class_index?: number | null;
}

const METHODS = [
  { value: "gradcam", name: "Grad-CAM" },
  { value: "lime", name: "LIME" },
] as const;

/** An object URL for an explanation's overlay PNG (fetched with the token), revoked when it changes or unmounts. */
export function useOverlayUrl(explanationId: string | undefined) {
  const overlay = useQuery({
    queryKey: ["explanations", explanationId, "overlay"],
    enabled: Boolean(explanationId),
    staleTime: Infinity,
    queryFn: () =>
      unwrap(api.GET("/explanations/{explanation_id}/overlay.png", {
        params: { path: { explanation_id: explanationId ?? "" } },
        parseAs: "blob",
      })) as Promise<Blob>,
  });
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (!overlay.data) {
      setUrl(undefined);
      return;
    }
    const made = URL.createObjectURL(overlay.data);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [overlay.data]);
  return { url, error: overlay.error, pending: overlay.isFetching };
}

export function Explain({ app, version, instance, usedRate }: {
  app: string;
  version: number;
  instance: unknown;
  usedRate: number | null;
}) {
  const [method, setMethod] = useState<string>("gradcam");
  const [rate, setRate] = useState<"full" | "used">("full");
  const explain = useMutation({
    mutationFn: async () =>
      (await unwrap(api.POST("/inference_jobs/{app}/{version}/explain", {
        params: { path: { app, version } },
        body: { instance, method, ...(rate === "used" && usedRate !== null ? { slice_rate: usedRate } : {}) },
      }))) as Explanation,
  });
  const overlay = useOverlayUrl(explain.data?.id);
  const methodName = METHODS.find((m) => m.value === explain.data?.method)?.name ?? explain.data?.method;

  function submit(event: FormEvent) {
    event.preventDefault();
    explain.mutate();
  }

  return (
    <Section title="Explain">
      <form className="form inline" onSubmit={submit} aria-label="Explain the prediction">
        <label>
          Method
          <select value={method} onChange={(e) => setMethod(e.target.value)}>
            {METHODS.map((m) => <option key={m.value} value={m.value}>{m.name}</option>)}
          </select>
        </label>
        <label>
          Slice rate
          <select value={rate} onChange={(e) => setRate(e.target.value as "full" | "used")}>
            <option value="full">Full width</option>
            {usedRate !== null ? <option value="used">The width used ({usedRate})</option> : null}
          </select>
        </label>
        <button type="submit" className="primary" disabled={explain.isPending}>
          {explain.isPending ? "Explaining…" : "Explain"}
        </button>
      </form>
      {explain.isPending ? <Loading what="Explaining (off the deadline path; this can take a while)" /> : null}
      <ErrorBox error={explain.error} />
      {explain.data ? (
        <>
          <p role="status">
            {methodName} explanation of label <strong data-testid="explained-label">{String(explain.data.label)}</strong>
            {" "}at {explain.data.slice_rate === null ? "full width" : `slice rate ${explain.data.slice_rate}`}.
          </p>
          {overlay.pending ? <Loading what="Loading the overlay" /> : null}
          <ErrorBox error={overlay.error} />
          {overlay.url ? (
            <img className="overlay" src={overlay.url} width={192} height={192}
                 alt={`${methodName} heat map over the input: where the model looked to predict ${String(explain.data.label)}`} />
          ) : null}
        </>
      ) : null}
    </Section>
  );
}
