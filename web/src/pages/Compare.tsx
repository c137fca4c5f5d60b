// The compare view (`/runs/$a/compare/$b`, SPEC §5a): both runs with their
// totals, then the node visits lined up by `GET /api/runs/{a}/compare/{b}`,
// the first difference marked and scrolled to; *only differences* hides the
// equal visits.
import { useMemo, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { ArrowLeftRight } from "lucide-react";
import { fetchComparison } from "../api/fork";
import { compareRoute } from "../router";
import { RunCard } from "../run/compare/CompareHeader";
import { CompareTable } from "../run/compare/CompareTable";
import { branchLabel, firstDifferenceIndex } from "../run/compare/visits";
import { fetchRun, keys } from "../run/queries";
import { formatInt, plural } from "../run/format";

export function ComparePage() {
  const { a, b } = compareRoute.useParams();
  return <Compare key={`${a}/${b}`} a={a} b={b} />;
}

function Compare({ a, b }: { a: string; b: string }) {
  const comparison = useQuery({
    queryKey: ["compare", a, b],
    queryFn: () => fetchComparison(a, b),
    retry: (count, error) => ((error as { status?: number }).status ?? 500) >= 500 && count < 1,
  });
  const runA = useQuery({ queryKey: keys.run(a), queryFn: () => fetchRun(a) });
  const runB = useQuery({ queryKey: keys.run(b), queryFn: () => fetchRun(b) });
  const [onlyDiffs, setOnlyDiffs] = useState(false);
  const c = comparison.data;
  const firstDiff = useMemo(() => (c ? c.visits[firstDifferenceIndex(c)] : undefined), [c]);
  const visits = useMemo(() => (c ? (onlyDiffs ? c.visits.filter((v) => !v.equal) : c.visits) : []), [c, onlyDiffs]);
  const different = c ? c.visits.filter((v) => !v.equal).length : 0;

  return (
    <div className="flex h-full flex-col" data-testid="compare-view" data-a={a} data-b={b}>
      <header className="shrink-0 border-b border-slate-200 bg-white px-4 py-3">
        <div className="flex items-center gap-3">
          <h1 className="flex items-center gap-2 text-base font-semibold text-slate-900">
            <ArrowLeftRight size={16} className="text-slate-500" />
            Compare
            {runA.data && <span className="font-normal text-slate-600">{runA.data.workflow.name}</span>}
          </h1>
          {runA.data && runB.data && runA.data.workflow.name !== runB.data.workflow.name && (
            <span className="text-xs text-status-failed">different workflows</span>
          )}
          <Link to="/runs/$a/compare/$b" params={{ a: b, b: a }} className="ml-auto text-xs font-medium text-blue-700 hover:underline">
            Swap A and B
          </Link>
        </div>
        {c && (
          <div className="mt-3 grid grid-cols-2 gap-3">
            <RunCard side="A" run={runA.data} totals={c.totals.a} />
            <RunCard side="B" run={runB.data} totals={c.totals.b} other={c.totals.a} />
          </div>
        )}
      </header>
      {comparison.isPending && <p className="p-6 text-sm text-slate-500">Comparing…</p>}
      {comparison.isError && (
        <p role="alert" className="m-4 rounded border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800" data-testid="compare-error">
          {comparison.error.message}
        </p>
      )}
      {c && (
        <>
          <div className="flex shrink-0 items-center gap-4 border-b border-slate-200 bg-slate-50 px-4 py-2 text-xs text-slate-600">
            <span data-testid="compare-summary">
              {plural(c.visits.length, "visit")} · <span className={different > 0 ? "font-semibold text-amber-800" : ""}>{formatInt(different)} different</span>
            </span>
            {c.first_difference ? (
              <button
                type="button"
                className="text-blue-700 hover:underline"
                onClick={() => document.querySelector("[data-first-difference]")?.scrollIntoView({ block: "center", behavior: "smooth" })}
              >
                first difference: <span className="font-mono">{c.first_difference.node}</span> ({branchLabel(c.first_difference.branch)})
              </button>
            ) : (
              <span className="font-medium text-status-completed">The runs agree on every visit.</span>
            )}
            <label className="ml-auto flex items-center gap-1.5 font-medium text-slate-700">
              <input type="checkbox" checked={onlyDiffs} onChange={(e) => setOnlyDiffs(e.target.checked)} data-testid="only-differences" />
              Only differences
            </label>
          </div>
          <div className="min-h-0 flex-1 overflow-auto bg-white">
            <CompareTable key={String(onlyDiffs)} visits={visits} firstDiff={firstDiff} />
          </div>
        </>
      )}
    </div>
  );
}
