// One node of the run graph: its ref and kind, a border in the tone of its
// visits (failed > running > waiting > completed; grey when never visited),
// and the visit counts per tone plus cost. Memoised: the run view redraws
// it only when its own summary changes.
import { memo } from "react";
import clsx from "clsx";
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { NODE_HEIGHT, NODE_WIDTH } from "../graph/layout";
import { formatCost, formatDuration, formatInt } from "./format";
import type { NodeSummary } from "./queries";
import { TONE_CLASS, visitsByTone, type Tone } from "./status";

export type RunNodeData = {
  ref: string;
  kind: string;
  summary: NodeSummary | undefined;
  selected: boolean;
};

export type RunFlowNode = Node<RunNodeData, "run">;

const ORDER: Tone[] = ["running", "waiting", "completed", "failed", "cancelled"];

function nodeTone(summary: NodeSummary | undefined): Tone | null {
  if (!summary) return null;
  const t = visitsByTone(summary.visits);
  if (t.failed > 0) return "failed";
  if (t.running > 0) return "running";
  if (t.waiting > 0) return "waiting";
  if (t.completed > 0) return "completed";
  if (t.cancelled > 0) return "cancelled";
  return null;
}

export const RunNode = memo(function RunNode({ data }: NodeProps<RunFlowNode>) {
  const tone = nodeTone(data.summary);
  const counts = data.summary ? visitsByTone(data.summary.visits) : null;
  const cost = data.summary?.usage.cost_usd ?? 0;
  return (
    <div
      data-testid={`run-node-${data.ref}`}
      data-tone={tone ?? "none"}
      style={{ width: NODE_WIDTH, minHeight: NODE_HEIGHT }}
      className={clsx(
        "rounded-md border-2 bg-white px-2.5 py-1.5 shadow-sm",
        tone ? TONE_CLASS[tone].border : "border-slate-300",
        data.selected && "ring-2 ring-blue-400 ring-offset-1",
      )}
    >
      <Handle type="target" position={Position.Top} className="!size-1.5 !border-0 !bg-slate-400" isConnectable={false} />
      <div className="flex items-baseline justify-between gap-2">
        <span className="truncate text-[13px] font-semibold text-slate-900">{data.ref}</span>
        <span className="shrink-0 font-mono text-[10px] text-slate-500">{data.kind}</span>
      </div>
      <div className="mt-1 flex flex-wrap items-center gap-1">
        {counts &&
          ORDER.filter((t) => counts[t] > 0).map((t) => (
            <span
              key={t}
              data-visits={t}
              className={clsx("inline-flex items-center gap-1 rounded px-1 font-mono text-[11px]", TONE_CLASS[t].bg, TONE_CLASS[t].text)}
              title={`${counts[t]} ${t}`}
            >
              <span className={clsx("size-1.5 rounded-full", TONE_CLASS[t].dot)} />
              {formatInt(counts[t])}
            </span>
          ))}
        {counts && ORDER.every((t) => counts[t] === 0) && <span className="text-[11px] text-slate-400">not visited</span>}
        {cost > 0 && <span className="ml-auto font-mono text-[11px] text-slate-600">{formatCost(cost)}</span>}
      </div>
      {data.summary && data.summary.attempts > 0 && (
        <div className="mt-1 truncate font-mono text-[10px] text-slate-500">
          {formatInt(data.summary.attempts)} {data.summary.attempts === 1 ? "attempt" : "attempts"}
          {data.summary.retries > 0 && ` · ${formatInt(data.summary.retries)} ${data.summary.retries === 1 ? "retry" : "retries"}`}
          {data.summary.duration_ms.median != null && ` · med ${formatDuration(data.summary.duration_ms.median)}`}
        </div>
      )}
      <Handle type="source" position={Position.Bottom} className="!size-1.5 !border-0 !bg-slate-400" isConnectable={false} />
    </div>
  );
});
