// The templates a declarative train job (one that named no models) got: the ones chosen because their declared
// schema fits the training data, the ones added later (knowledge-base growth), and why the others were passed
// over — as admin recorded them on the job (`candidates`; its schema is untyped, so it is read defensively).
import { Section } from "./ui";

export interface Choice {
  model_id: string;
  name: string;
  reason: string;
}

export interface CandidateRecord {
  schema: { task?: string; input_shape?: (number | null)[]; num_classes?: number } | null;
  schemaStatus: string | null;
  chosen: Choice[];
  added: Choice[];
  passedOver: Choice[];
  passedOverTotal: number;
  grownFrom: number | null;
}

function choices(value: unknown): Choice[] {
  if (!Array.isArray(value)) return [];
  return value.filter((c): c is Choice => !!c && typeof c === "object" && typeof c.name === "string"
    && typeof c.reason === "string").map((c) => ({ model_id: String(c.model_id ?? ""), name: c.name, reason: c.reason }));
}

/** The record admin keeps on a job, or null for a job that named its models. */
export function readCandidates(raw: unknown): CandidateRecord | null {
  if (!raw || typeof raw !== "object") return null;
  const record = raw as Record<string, unknown>;
  const passedOver = choices(record.passed_over);
  return {
    schema: record.schema && typeof record.schema === "object" ? record.schema as CandidateRecord["schema"] : null,
    schemaStatus: typeof record.schema_status === "string" ? record.schema_status : null,
    chosen: choices(record.chosen),
    added: choices(record.added),
    passedOver,
    passedOverTotal: typeof record.passed_over_total === "number" ? record.passed_over_total : passedOver.length,
    grownFrom: typeof record.grown_from_version === "number" ? record.grown_from_version : null,
  };
}

function shape(dims: (number | null)[] | undefined): string {
  return dims ? `[${dims.map((d) => (d === null ? "any" : String(d))).join(", ")}]` : "?";
}

function ChoiceTable({ caption, rows }: { caption: string; rows: Choice[] }) {
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="candidates">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Template</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={`${c.model_id}-${c.name}`}>
              <td>{c.name}</td>
              <td>{c.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Candidates({ raw }: { raw: unknown }) {
  const record = readCandidates(raw);
  if (record === null) return null;
  const schema = record.schema;
  return (
    <Section title="Candidate models">
      <p className="muted">
        {record.grownFrom !== null
          ? `Queued by knowledge-base growth after v${record.grownFrom} finished: a newly published template fits this app's data. `
          : "This job named no models: Easel chose the templates whose declared schema fits the training data. "}
        {schema ? `The data: ${schema.task ?? "?"}, input shape ${shape(schema.input_shape)}, `
          + `${schema.num_classes ?? "?"} classes (schema ${record.schemaStatus ?? "inferred"}).` : null}
      </p>
      <ChoiceTable caption={`Chosen (${record.chosen.length})`} rows={record.chosen} />
      {record.added.length > 0 ? <ChoiceTable caption={`Added while it ran (${record.added.length})`} rows={record.added} /> : null}
      {record.passedOver.length > 0 ? (
        <details>
          <summary>
            Passed over ({record.passedOverTotal}
            {record.passedOverTotal > record.passedOver.length ? `, ${record.passedOver.length} listed` : ""})
          </summary>
          <ChoiceTable caption="Passed over" rows={record.passedOver} />
        </details>
      ) : null}
    </Section>
  );
}
