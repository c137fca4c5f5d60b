// The compare view's rows: one per lined-up visit (node, branch path,
// occurrence), an equal / different badge, output A | output B with each
// side's duration and cost. Different rows carry an amber rule and full-
// contrast outputs; equal rows are quiet. The first difference is marked
// and scrolled to when the view opens.
import { useEffect, useRef, useState } from "react";
import clsx from "clsx";
import type { CompareSide, CompareVisit } from "../../api/fork";
import { formatCost, formatDuration } from "../format";
import { StatusBadge } from "../StatusBadge";
import { branchLabel, visitKey } from "./visits";

const PAGE = 300;

export function CompareTable({ visits, firstDiff }: { visits: CompareVisit[]; firstDiff: CompareVisit | undefined }) {
  // Enough rows to include the first difference, then pages of PAGE.
  const firstIndex = firstDiff ? visits.indexOf(firstDiff) : -1;
  const [shown, setShown] = useState(Math.max(PAGE, firstIndex + 50));
  const firstRow = useRef<HTMLTableRowElement>(null);
  useEffect(() => {
    firstRow.current?.scrollIntoView({ block: "nearest" });
  }, []);
  if (visits.length === 0) return <p className="px-4 py-6 text-center text-[12px] text-slate-500">No visits to show.</p>;
  return (
    <>
      <table className="w-full table-fixed border-collapse text-xs" data-testid="compare-table">
        <colgroup>
          <col className="w-52" />
          <col className="w-28" />
          <col />
          <col />
        </colgroup>
        <thead className="sticky top-0 z-10 border-b border-slate-200 bg-slate-50">
          <tr>
            <th className="px-3 py-2 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Visit</th>
            <th className="px-3 py-2 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Outputs</th>
            <th className="px-3 py-2 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Run A</th>
            <th className="px-3 py-2 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Run B</th>
          </tr>
        </thead>
        <tbody>
          {visits.slice(0, shown).map((v) => {
            const first = v === firstDiff;
            return (
              <tr
                key={visitKey(v)}
                ref={first ? firstRow : undefined}
                data-testid="compare-row"
                data-node={v.node}
                data-equal={v.equal ? "true" : "false"}
                data-first-difference={first ? "true" : undefined}
                className={clsx(
                  "border-b border-slate-200 align-top",
                  v.equal ? "bg-white" : "bg-amber-50/40",
                  first && "bg-amber-50 outline-2 -outline-offset-2 outline-amber-400",
                )}
              >
                <td className={clsx("border-l-4 px-3 py-2", v.equal ? "border-l-transparent" : "border-l-amber-400")}>
                  <div className="font-mono text-[12px] font-semibold text-slate-900">{v.node}</div>
                  <div className="mt-0.5 font-mono text-[11px] text-slate-500">
                    <span title="branch index path">{branchLabel(v.branch)}</span>
                    {v.occurrence > 0 && <span title="loop visit"> · visit {v.occurrence + 1}</span>}
                  </div>
                  {first && <div className="mt-1 text-[11px] font-semibold text-amber-800">first difference</div>}
                </td>
                <td className="px-3 py-2">
                  <EqualBadge equal={v.equal} />
                </td>
                <td className="px-3 py-2">
                  <SideCell side={v.a} equal={v.equal} testId="compare-a" />
                </td>
                <td className="px-3 py-2">
                  <SideCell side={v.b} equal={v.equal} testId="compare-b" />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {visits.length > shown && (
        <div className="flex justify-center py-3">
          <button type="button" className="rounded border border-slate-300 bg-white px-3 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50" onClick={() => setShown((n) => n + PAGE)}>
            Show {Math.min(PAGE, visits.length - shown)} more of {visits.length - shown}
          </button>
        </div>
      )}
    </>
  );
}

export function EqualBadge({ equal }: { equal: boolean }) {
  return (
    <span
      data-testid="equal-badge"
      className={clsx(
        "inline-flex items-center gap-1 rounded-full border px-2 py-0.5 text-[11px] font-medium whitespace-nowrap",
        equal ? "border-slate-200 bg-slate-50 text-slate-500" : "border-amber-300 bg-amber-100 text-amber-900",
      )}
    >
      {equal ? "= equal" : "≠ different"}
    </span>
  );
}

function SideCell({ side, equal, testId }: { side: CompareSide | null; equal: boolean; testId: string }) {
  if (!side) return <span className="text-[11px] text-slate-400 italic" data-testid={testId}>not visited</span>;
  const text = typeof side.output === "string" ? side.output : JSON.stringify(side.output ?? null, null, 2);
  return (
    <div className="min-w-0" data-testid={testId}>
      <pre
        className={clsx(
          "max-h-40 overflow-auto rounded border px-2 py-1.5 font-mono text-[11px] leading-relaxed whitespace-pre-wrap break-words",
          equal ? "border-slate-200 bg-slate-50 text-slate-500" : "border-amber-200 bg-white text-slate-900",
        )}
        data-testid="compare-output"
      >
        {text}
      </pre>
      <div className="mt-1 flex flex-wrap items-center gap-x-3 gap-y-0.5 font-mono text-[11px] text-slate-500">
        {side.status !== "completed" && side.status !== "merged" && <StatusBadge status={side.status} className="text-[11px]" />}
        <span title="duration">{formatDuration(side.duration_ms)}</span>
        {side.usage.llm_calls > 0 && <span title="LLM calls">{side.usage.llm_calls} call{side.usage.llm_calls === 1 ? "" : "s"}</span>}
        <span title="cost" data-field="cost_usd">
          {formatCost(side.usage.cost_usd)}
        </span>
        <span className="text-slate-400" title="token">
          {side.token_id}
        </span>
      </div>
    </div>
  );
}
