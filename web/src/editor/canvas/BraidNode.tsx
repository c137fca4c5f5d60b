// A definition node on the editor canvas: kind icon, ref and name, with
// badges for the initial node, fan-out and fan-in, and a red outline when the
// last save reported a problem on it.
import { memo } from "react";
import { Handle, Position, type NodeProps } from "@xyflow/react";
import clsx from "clsx";
import { Play } from "lucide-react";
import type { GraphNode } from "../../graph/bundle";
import { NODE_HEIGHT, NODE_WIDTH } from "../../graph/layout";
import { useNodeProblems } from "./context";
import { kindLook } from "./kinds";

function fanInLabel(fanIn: unknown): string {
  if (fanIn === "all" || fanIn === "any") return `join ${fanIn}`;
  if (typeof fanIn === "object" && fanIn !== null && "m_of_n" in fanIn) return `join ${(fanIn as { m_of_n: number }).m_of_n} of n`;
  return "join";
}

/** What the action does, in a few words, when the node has no display name. */
function summary(action: GraphNode["data"]["def"]["action"], kind: string): string {
  if (typeof action === "string") return `${kind} · ${action}`;
  switch (action.kind) {
    case "llm_call":
      return `llm_call · ${action.model || "no model"}`;
    case "workflow_call":
      return `workflow_call → ${typeof action.workflow === "string" ? action.workflow || "?" : "from context"}`;
    case "write_artifact":
      return `write_artifact · ${action.name || "?"}`;
    case "update_context": {
      const n = action.updates?.length ?? 0;
      return `update_context · ${n} update${n === 1 ? "" : "s"}`;
    }
  }
}

export const BraidNode = memo(function BraidNode({ data, selected }: NodeProps<GraphNode>) {
  const { errors: problems, warnings } = useNodeProblems(data.def.ref);
  const look = kindLook(data.fanIn && data.kind === "update_context" ? "join" : data.kind);
  const Icon = look.icon;
  return (
    <div
      data-testid={`node-${data.def.ref}`}
      data-invalid={problems ? "true" : undefined}
      style={{ width: NODE_WIDTH, height: NODE_HEIGHT }}
      className={clsx(
        "flex flex-col justify-between rounded-md border bg-white px-3 py-2 shadow-sm",
        problems
          ? "border-status-failed ring-2 ring-red-200"
          : selected
            ? "border-blue-500 ring-2 ring-blue-200"
            : warnings
              ? "border-status-waiting ring-2 ring-amber-100"
              : "border-slate-300",
      )}
    >
      <Handle type="target" position={Position.Top} className="!h-2.5 !w-2.5 !border-slate-400 !bg-white" />
      <div className="flex min-w-0 items-center gap-2">
        <span className={clsx("flex h-6 w-6 shrink-0 items-center justify-center rounded", look.accent)}>
          <Icon size={14} />
        </span>
        <div className="min-w-0">
          <div className="truncate font-mono text-[13px] font-semibold text-slate-900">{data.def.ref}</div>
          <div className="truncate text-[11px] text-slate-500">{data.def.name || summary(data.def.action, data.kind)}</div>
        </div>
      </div>
      <div className="flex gap-1 text-[10px] font-medium">
        {data.initial && (
          <span className="flex items-center gap-0.5 rounded bg-blue-50 px-1.5 py-px text-blue-700" title="Initial node">
            <Play size={9} /> start
          </span>
        )}
        {data.fanOut && <span className="rounded bg-indigo-50 px-1.5 py-px text-indigo-700">fan-out</span>}
        {data.fanIn && (
          <span className="rounded bg-amber-50 px-1.5 py-px text-amber-700">
            {fanInLabel(data.def.fan_in)}
            {data.def.joins ? ` ← ${data.def.joins}` : ""}
          </span>
        )}
        {problems ? (
          <span className="ml-auto rounded bg-red-50 px-1.5 py-px text-red-700">
            {problems.length} problem{problems.length > 1 ? "s" : ""}
          </span>
        ) : (
          warnings && (
            <span className="ml-auto rounded bg-amber-50 px-1.5 py-px text-amber-700" data-testid={`node-warning-${data.def.ref}`}>
              {warnings.length} warning{warnings.length > 1 ? "s" : ""}
            </span>
          )
        )}
      </div>
      <Handle type="source" position={Position.Bottom} className="!h-2.5 !w-2.5 !border-slate-400 !bg-white" />
    </div>
  );
});
