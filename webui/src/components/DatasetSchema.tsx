// A dataset's schema (what templates are matched on: task kind, input shape, classes), as inferred on upload,
// and the owner's confirmation or edit of it (GET/PATCH /datasets/{id}/schema). Admin checks every edit; a
// contradicting one comes back as its 422, shown as worded.
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../api/client";
import { ErrorBox, Loading, Section } from "./ui";

type SchemaEdit = Schemas["DatasetSchemaIn"];
const SHOWN_CLASSES = 20;

function shapeText(dims: (number | null)[]): string {
  return dims.map((d) => (d === null ? "any" : String(d))).join(", ");
}

/** "1, 8, 8" or "3, any, any" → dimensions (null: any size); null when a dimension is not a positive integer. */
export function parseShape(text: string): (number | null)[] | null {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length < 1 || parts.length > 4) return null;
  const dims = parts.map((p) => (p === "any" ? null : /^\d+$/.test(p) && Number(p) > 0 ? Number(p) : undefined));
  return dims.some((d) => d === undefined) ? null : (dims as (number | null)[]);
}

export function DatasetSchema({ datasetId, name }: { datasetId: string; name: string }) {
  const queries = useQueryClient();
  const key = ["dataset-schema", datasetId];
  const schema = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET("/datasets/{dataset_id}/schema", { params: { path: { dataset_id: datasetId } } })),
  });
  const save = useMutation({
    mutationFn: (body: SchemaEdit) =>
      unwrap(api.PATCH("/datasets/{dataset_id}/schema", { params: { path: { dataset_id: datasetId } }, body })),
    onSuccess: (answer) => {
      queries.setQueryData(key, answer);
      void queries.invalidateQueries({ queryKey: ["datasets"] });
    },
  });
  return (
    <Section title={`Schema of ${name}`}>
      <ErrorBox error={schema.error} />
      {schema.isPending ? <Loading /> : null}
      {schema.data ? <SchemaBody key={JSON.stringify(schema.data)} schema={schema.data} onSave={(b) => save.mutate(b)}
                                  saving={save.isPending} /> : null}
      <ErrorBox error={save.error} />
    </Section>
  );
}

function SchemaBody({ schema, onSave, saving }: {
  schema: Schemas["DatasetSchemaOut"]; onSave: (body: SchemaEdit) => void; saving: boolean;
}) {
  const [shape, setShape] = useState(shapeText(schema.input_shape));
  const [classes, setClasses] = useState(String(schema.num_classes));
  const [labels, setLabels] = useState(schema.classes.join(", "));
  const [problem, setProblem] = useState<string | null>(null);

  function edit(event: FormEvent) {
    event.preventDefault();
    const dims = parseShape(shape);
    const count = /^\d+$/.test(classes.trim()) ? Number(classes) : NaN;
    if (dims === null) return setProblem("input shape: 1–4 positive whole numbers or 'any', separated by commas");
    if (!(count >= 2 && count <= 100_000)) return setProblem("classes: a whole number from 2 to 100000");
    const names = labels.split(",").map((l) => l.trim()).filter((l) => l !== "");
    setProblem(null);
    onSave({ input_shape: dims, num_classes: count, classes: names });
  }

  const more = schema.classes.length - SHOWN_CLASSES;
  return (
    <>
      <dl className="facts">
        <dt>Status</dt><dd data-testid="schema-status">{schema.status}</dd>
        <dt>Task</dt><dd>{schema.task}</dd>
        <dt>Input shape</dt><dd>[{shapeText(schema.input_shape)}]</dd>
        <dt>Type</dt><dd>{schema.dtype}</dd>
        <dt>Classes</dt>
        <dd>
          {schema.num_classes}
          {schema.classes.length > 0 ? `: ${schema.classes.slice(0, SHOWN_CLASSES).join(", ")}${more > 0 ? ` and ${more} more` : ""}` : ""}
        </dd>
      </dl>
      <form className="form grid" onSubmit={edit} aria-label="Edit the schema" noValidate>
        <label>
          Input shape ("any": a size that varies)
          <input value={shape} onChange={(e) => setShape(e.target.value)} />
        </label>
        <label>
          Number of classes
          <input inputMode="numeric" value={classes} onChange={(e) => setClasses(e.target.value)} />
        </label>
        <label>
          Class labels (comma-separated, in order)
          <input value={labels} onChange={(e) => setLabels(e.target.value)} />
        </label>
        <div>
          <button type="button" disabled={saving} onClick={() => onSave({})}>Confirm as shown</button>{" "}
          <button type="submit" className="primary" disabled={saving}>Save changes</button>
        </div>
      </form>
      {problem ? <p className="field-error" role="alert">{problem}</p> : null}
    </>
  );
}
