// The run header's *Compare with…*: a small popover listing the latest runs
// of the same workflow (searchable by id, version or status), the fork
// source first and selected when the run was forked; *Compare* opens
// `/runs/<older>/compare/<newer>`.
import { useEffect, useMemo, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { Columns2 } from "lucide-react";
import clsx from "clsx";
import { forkedFrom } from "../../api/fork";
import { StatusBadge } from "../StatusBadge";
import { formatCost, formatStarted, shortId } from "../format";
import { fetchRuns, type Run, type RunSummary } from "../queries";

const RECENT = 50;

export function ComparePicker({ run }: { run: Run }) {
  const [open, setOpen] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => box.current && !box.current.contains(e.target as Node) && setOpen(false);
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && setOpen(false);
    window.addEventListener("mousedown", onDown);
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("mousedown", onDown);
      window.removeEventListener("keydown", onKey);
    };
  }, [open]);
  return (
    <div className="relative" ref={box}>
      <button
        type="button"
        className="inline-flex items-center gap-1.5 rounded border border-slate-300 bg-white px-3 py-1 text-xs font-medium text-slate-700 hover:border-blue-400 hover:text-blue-700"
        aria-expanded={open}
        onClick={() => setOpen((o) => !o)}
      >
        <Columns2 size={13} /> Compare with…
      </button>
      {open && <PickerList run={run} onClose={() => setOpen(false)} />}
    </div>
  );
}

function PickerList({ run, onClose }: { run: Run; onClose: () => void }) {
  const source = forkedFrom(run);
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<string | null>(source?.run_id ?? null);
  const navigate = useNavigate();
  const runs = useQuery({
    // Not under ["runs"]: those are the runs list's paged caches, patched live.
    queryKey: ["compare-candidates", run.workflow.name],
    queryFn: () => fetchRuns({ workflow: run.workflow.name }, undefined),
  });
  const rows = useMemo(() => {
    const others: (RunSummary | { id: string; missing: true })[] = (runs.data?.items ?? []).filter((r) => r.id !== run.id);
    // The fork source leads, even when it is older than the latest page.
    if (source) {
      const i = others.findIndex((r) => r.id === source.run_id);
      const [first] = i >= 0 ? others.splice(i, 1) : [{ id: source.run_id, missing: true as const }];
      others.unshift(first);
    }
    const q = query.trim().toLowerCase();
    if (!q) return others;
    return others.filter((r) => ("missing" in r ? r.id : `${r.id} v${r.workflow.version} ${r.status}`).toLowerCase().includes(q));
  }, [runs.data, run.id, source, query]);
  // The older run is A (left, "before"): a fork is compared with its source
  // as the change it made, whichever of the two the picker was opened from.
  const go = (other: string) => {
    const summary = runs.data?.items.find((r) => r.id === other);
    const otherIsOlder = summary ? Date.parse(summary.created_at) <= Date.parse(run.created_at) : other === source?.run_id;
    onClose();
    void navigate({ to: "/runs/$a/compare/$b", params: otherIsOlder ? { a: other, b: run.id } : { a: run.id, b: other } });
  };

  return (
    <div
      className="absolute right-0 z-40 mt-1 flex w-[500px] flex-col rounded-lg border border-slate-200 bg-white shadow-xl"
      data-testid="compare-picker"
      role="dialog"
      aria-label="Compare with another run"
    >
      <div className="border-b border-slate-200 p-2">
        <input
          autoFocus
          className="w-full rounded border border-slate-300 px-2 py-1 text-[12px] focus:border-blue-500 focus:ring-1 focus:ring-blue-500 focus:outline-none"
          placeholder={`Search runs of ${run.workflow.name} (id, v2, failed…)`}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => e.key === "Enter" && picked && go(picked)}
        />
      </div>
      <ul className="max-h-72 overflow-auto py-1" role="listbox" aria-label="Runs">
        {runs.isPending && <li className="px-3 py-2 text-[12px] text-slate-400">Loading runs…</li>}
        {runs.isError && <li className="px-3 py-2 text-[12px] text-status-failed">{runs.error.message}</li>}
        {runs.isSuccess && rows.length === 0 && <li className="px-3 py-2 text-[12px] text-slate-400">No other run of {run.workflow.name}{query && " matches"}.</li>}
        {rows.map((r) => (
          <li key={r.id}>
            <button
              type="button"
              role="option"
              aria-selected={picked === r.id}
              data-testid="compare-candidate"
              data-run={r.id}
              className={clsx(
                "flex w-full items-center gap-2 px-3 py-1.5 text-left text-[12px] whitespace-nowrap hover:bg-slate-50",
                picked === r.id && "bg-blue-50 hover:bg-blue-50",
              )}
              onClick={() => setPicked(r.id)}
              onDoubleClick={() => go(r.id)}
            >
              {"missing" in r ? (
                <span className="font-mono text-slate-700">{shortId(r.id)}</span>
              ) : (
                <>
                  <StatusBadge status={r.status} />
                  <span className="font-mono text-slate-500">v{r.workflow.version}</span>
                  <span className="font-mono text-slate-800" title={r.id}>
                    {shortId(r.id)}
                  </span>
                  <span className="text-slate-500">{formatStarted(r.started_at ?? r.created_at)}</span>
                  <span className="ml-auto font-mono text-slate-500">{formatCost(r.usage.cost_usd)}</span>
                </>
              )}
              {source?.run_id === r.id && <span className="rounded bg-slate-100 px-1.5 text-[11px] text-slate-600">fork source</span>}
            </button>
          </li>
        ))}
      </ul>
      <div className="flex items-center justify-end gap-2 border-t border-slate-200 px-3 py-2">
        <span className="mr-auto text-[11px] text-slate-500">Latest {RECENT} runs of this workflow</span>
        <button type="button" className="rounded border border-slate-300 bg-white px-3 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50" onClick={onClose}>
          Close
        </button>
        <button
          type="button"
          disabled={!picked}
          className="rounded border border-blue-700 bg-blue-600 px-3 py-1 text-xs font-medium text-white hover:bg-blue-700 disabled:opacity-40"
          onClick={() => picked && go(picked)}
          data-testid="compare-go"
        >
          Compare
        </button>
      </div>
    </div>
  );
}
