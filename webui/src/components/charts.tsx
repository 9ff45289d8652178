// The charts of the dashboard (recharts), each inside a labelled figure.
import type { ReactNode } from "react";
import {
  Bar, BarChart, CartesianGrid, ComposedChart, Legend, Line, LineChart, ResponsiveContainer, Scatter, Tooltip, XAxis, YAxis,
} from "recharts";
import type { BestPoint, EpochRow, ProfileRow } from "../lib/liveJob";
import type { ServingPoint } from "../lib/serving";

export const PALETTE = ["#2f6fde", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0c8599", "#c2255c", "#5c940d"];

export function Figure({ caption, children }: { caption: string; children: ReactNode }) {
  return (
    <figure className="chart" aria-label={caption}>
      <figcaption>{caption}</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        {children as React.ReactElement}
      </ResponsiveContainer>
    </figure>
  );
}

const axis = { stroke: "currentColor", fontSize: 12 };

export function BestSoFarChart({ points }: { points: BestPoint[] }) {
  return (
    <Figure caption="Best score so far, by trial">
      <ComposedChart data={points} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="trial" {...axis} label={{ value: "trial", position: "insideBottomRight", offset: -4 }} />
        <YAxis domain={[0, 1]} {...axis} />
        <Tooltip />
        <Legend />
        <Scatter name="trial score" dataKey="score" fill={PALETTE[1]} />
        <Line name="best so far" type="stepAfter" dataKey="best" stroke={PALETTE[0]} dot={false} isAnimationActive={false} />
      </ComposedChart>
    </Figure>
  );
}

export function EpochChart({ rows, series, metric }: { rows: EpochRow[]; series: string[]; metric: string }) {
  return (
    <Figure caption={`${metric} per epoch`}>
      <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="epoch" {...axis} />
        <YAxis {...axis} />
        <Tooltip />
        <Legend />
        {series.map((key, i) => (
          <Line key={key} name={`trial ${key.slice(1)}`} dataKey={key} stroke={PALETTE[i % PALETTE.length]}
                isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </Figure>
  );
}

export function ProfileChart({ rows, title }: { rows: ProfileRow[]; title: string }) {
  return (
    <Figure caption={title}>
      <ComposedChart data={rows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="rate" {...axis} label={{ value: "slice rate", position: "insideBottomRight", offset: -4 }} />
        <YAxis yAxisId="acc" domain={[0, 1]} {...axis} />
        <YAxis yAxisId="ms" orientation="right" {...axis} />
        <Tooltip />
        <Legend />
        <Bar yAxisId="acc" name="accuracy" dataKey="accuracy" fill={PALETTE[0]} isAnimationActive={false} />
        <Line yAxisId="ms" name="batch time (ms)" dataKey="batchMs" stroke={PALETTE[1]} isAnimationActive={false} />
      </ComposedChart>
    </Figure>
  );
}

export function CompareProfilesChart({ data, series }: { data: Record<string, number>[]; series: string[] }) {
  return (
    <Figure caption="Accuracy by slice rate, compared">
      <LineChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="rate" {...axis} reversed />
        <YAxis domain={[0, 1]} {...axis} />
        <Tooltip />
        <Legend />
        {series.map((key, i) => (
          <Line key={key} name={`trial ${key.slice(1)}`} dataKey={key} stroke={PALETTE[i % PALETTE.length]} isAnimationActive={false} />
        ))}
      </LineChart>
    </Figure>
  );
}

export function ServingLines({ points, lines, caption, domain }: {
  points: ServingPoint[]; lines: { key: keyof ServingPoint; name: string }[]; caption: string; domain?: [number, number];
}) {
  return (
    <Figure caption={caption}>
      <LineChart data={points} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="t" {...axis} label={{ value: "s", position: "insideBottomRight", offset: -4 }} />
        <YAxis domain={domain ?? ["auto", "auto"]} {...axis} />
        <Tooltip />
        <Legend />
        {lines.map((line, i) => (
          <Line key={line.key} name={line.name} dataKey={line.key} stroke={PALETTE[i % PALETTE.length]} dot={false}
                isAnimationActive={false} connectNulls />
        ))}
      </LineChart>
    </Figure>
  );
}

export function PlanMixChart({ rows }: { rows: { rate: string; minibatches: number }[] }) {
  return (
    <Figure caption="Plan mix: mini-batches run per slice rate">
      <BarChart data={rows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
        <CartesianGrid strokeOpacity={0.2} />
        <XAxis dataKey="rate" {...axis} />
        <YAxis allowDecimals={false} {...axis} />
        <Tooltip />
        <Bar name="mini-batches" dataKey="minibatches" fill={PALETTE[2]} isAnimationActive={false} />
      </BarChart>
    </Figure>
  );
}
