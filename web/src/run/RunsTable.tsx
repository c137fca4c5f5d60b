// The runs table: one row per run (status, workflow, version, id, started,
// duration, LLM calls, cost); child runs follow their parent, indented
// under a ↳ mark with the parent named. A row opens the run view.
import { useMemo } from "react";
import clsx from "clsx";
import { Link, useNavigate } from "@tanstack/react-router";
import { StatusBadge } from "./StatusBadge";
import { elapsedMs, formatCost, formatDuration, formatInt, formatStarted, shortId } from "./format";
import type { RunSummary } from "./queries";
import { nestRuns } from "./nestRuns";

const th = "px-3 py-2 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase";
const td = "px-3 py-1.5";

export function RunsTable({ runs, now }: { runs: RunSummary[]; now: number }) {
  const navigate = useNavigate();
  const rows = useMemo(() => nestRuns(runs), [runs]);
  return (
    <table className="w-full table-fixed border-collapse text-xs" data-testid="runs-table">
      <colgroup>
        <col className="w-28" />
        <col />
        <col className="w-16" />
        <col className="w-44" />
        <col className="w-36" />
        <col className="w-24" />
        <col className="w-20" />
        <col className="w-24" />
      </colgroup>
      <thead className="sticky top-0 z-10 border-b border-slate-200 bg-slate-50">
        <tr>
          <th className={th}>Status</th>
          <th className={th}>Workflow</th>
          <th className={th}>Version</th>
          <th className={th}>Run</th>
          <th className={th}>Started</th>
          <th className={clsx(th, "text-right")}>Duration</th>
          <th className={clsx(th, "text-right")}>Calls</th>
          <th className={clsx(th, "text-right")}>Cost</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ run: r, depth }) => {
          const child = r.parent_run_id != null;
          return (
            <tr
              key={r.id}
              data-testid="run-row"
              data-run={r.id}
              data-status={r.status}
              data-child={child}
              onClick={() => void navigate({ to: "/runs/$id", params: { id: r.id } })}
              className="cursor-pointer border-b border-slate-100 bg-white hover:bg-blue-50/50"
            >
              <td className={td}>
                <StatusBadge status={r.status} />
              </td>
              <td className={clsx(td, "truncate")}>
                <span className="inline-flex items-baseline gap-1.5" style={{ paddingLeft: Math.max(0, depth - 1) * 16 + (child ? 12 : 0) }}>
                  {child && <span className="text-slate-400" title="child run">↳</span>}
                  <span className="font-medium text-slate-900">{r.workflow.name}</span>
                  {child && <span className="font-mono text-[11px] text-slate-400">child of {shortId(r.parent_run_id!)}</span>}
                </span>
              </td>
              <td className={clsx(td, "font-mono text-slate-600")}>v{r.workflow.version}</td>
              <td className={clsx(td, "truncate font-mono text-[11px]")}>
                <Link to="/runs/$id" params={{ id: r.id }} className="text-blue-700 hover:underline" onClick={(e) => e.stopPropagation()} title={r.id}>
                  {shortId(r.id)}
                </Link>
              </td>
              <td className={clsx(td, "font-mono text-slate-600")}>{formatStarted(r.started_at ?? r.created_at)}</td>
              <td className={clsx(td, "text-right font-mono text-slate-700")}>
                {formatDuration(elapsedMs(r.started_at ?? r.created_at, r.ended_at, now))}
              </td>
              <td className={clsx(td, "text-right font-mono text-slate-700")}>{formatInt(r.usage.llm_calls)}</td>
              <td className={clsx(td, "text-right font-mono text-slate-700")} data-field="cost">
                {formatCost(r.usage.cost_usd)}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
