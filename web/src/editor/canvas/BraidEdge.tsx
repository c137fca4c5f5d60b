// A transition on the editor canvas, labelled with what changes how tokens
// flow along it: spawn_count / foreach (fan-out), loop, `on`, priority and a
// condition marker. Red when the last save reported a problem on it.
import { memo } from "react";
import { BaseEdge, EdgeLabelRenderer, getBezierPath, type EdgeProps } from "@xyflow/react";
import clsx from "clsx";
import type { GraphEdge } from "../../graph/bundle";
import { NODE_WIDTH } from "../../graph/layout";
import type { DefTransition } from "../model/types";
import { useEdgeProblems } from "./context";

function badges(def: DefTransition): string[] {
  const out: string[] = [];
  if (def.spawn_count != null) out.push(`×${def.spawn_count}`);
  if (def.foreach) out.push(`foreach ${def.foreach.collection}`);
  if (def.loop) out.push(`loop ≤${def.loop.max_iterations}`);
  if (def.on && def.on !== "success") out.push(`on ${def.on}`);
  if (def.priority) out.push(`p${def.priority}`);
  if (def.condition != null) out.push("if");
  return out;
}

/**
 * An edge going back up (a loop) would cut straight through the nodes
 * between its ends: route it around their left side instead, with rounded
 * corners, and put its label on the vertical run.
 */
function backEdgePath(sx: number, sy: number, tx: number, ty: number): [string, number, number] {
  const side = Math.min(sx, tx) - NODE_WIDTH / 2 - 36;
  const below = sy + 24;
  const above = ty - 24;
  const r = 12;
  const path = [
    `M ${sx} ${sy}`,
    `L ${sx} ${below - r}`,
    `Q ${sx} ${below} ${sx - r} ${below}`,
    `L ${side + r} ${below}`,
    `Q ${side} ${below} ${side} ${below - r}`,
    `L ${side} ${above + r}`,
    `Q ${side} ${above} ${side + r} ${above}`,
    `L ${tx - r} ${above}`,
    `Q ${tx} ${above} ${tx} ${above + r}`,
    `L ${tx} ${ty}`,
  ].join(" ");
  return [path, side, (below + above) / 2];
}

export const BraidEdge = memo(function BraidEdge(props: EdgeProps<GraphEdge>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, data, selected, markerEnd } = props;
  const { errors: problems, warnings } = useEdgeProblems(data?.index ?? -1);
  const [path, labelX, labelY] =
    targetY < sourceY + 10 ? backEdgePath(sourceX, sourceY, targetX, targetY) : getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  const labels = data ? badges(data.def) : [];
  const stroke = problems ? "#dc2626" : warnings ? "#d97706" : selected ? "#2563eb" : data?.def.on === "failure" ? "#f87171" : "#94a3b8";
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} style={{ stroke, strokeWidth: selected || problems ? 2.5 : 1.5 }} />
      {(labels.length > 0 || problems) && (
        <EdgeLabelRenderer>
          <div
            data-testid={`edge-label-${id}`}
            className="nodrag nopan pointer-events-none absolute flex gap-1"
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
          >
            {labels.map((l) => (
              <span
                key={l}
                className={clsx(
                  "rounded border bg-white px-1.5 py-px font-mono text-[10px] shadow-sm",
                  l.startsWith("×") || l.startsWith("foreach") ? "border-indigo-200 text-indigo-700" : "border-slate-200 text-slate-600",
                  l.startsWith("loop") && "border-amber-200 text-amber-700",
                )}
              >
                {l}
              </span>
            ))}
            {problems && <span className="rounded border border-red-300 bg-red-50 px-1.5 py-px text-[10px] text-red-700">!</span>}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
});
