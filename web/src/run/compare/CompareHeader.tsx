// The compare view's header: the two runs side by side (status, version,
// id, fork source) with their totals from the comparison (duration, LLM
// calls, tokens, cost), B's differences from A beside its numbers.
import { Link } from "@tanstack/react-router";
import clsx from "clsx";
import { forkedFrom, type CompareTotals } from "../../api/fork";
import { StatusBadge } from "../StatusBadge";
import { formatCost, formatDuration, formatInt, formatStarted, plural, shortId } from "../format";
import type { Run } from "../queries";

export function RunCard({ side, run, totals, other }: { side: "A" | "B"; run: Run | undefined; totals: CompareTotals; other?: CompareTotals }) {
  const source = run ? forkedFrom(run) : null;
  return (
    <div className="flex min-w-0 flex-col rounded-lg border border-slate-200 bg-white px-3 py-2.5" data-testid={`compare-run-${side.toLowerCase()}`}>
      <div className="flex flex-wrap items-center gap-x-2.5 gap-y-1">
        <span className={clsx("flex size-5 items-center justify-center rounded text-[11px] font-bold text-white", side === "A" ? "bg-slate-600" : "bg-blue-600")}>
          {side}
        </span>
        {run ? (
          <>
            <Link to="/runs/$id" params={{ id: run.id }} className="font-mono text-[13px] font-medium text-slate-900 hover:text-blue-700 hover:underline" title={run.id}>
              {shortId(run.id)}
            </Link>
            <span className="font-mono text-xs text-slate-500">v{run.workflow.version}</span>
            <StatusBadge status={run.status} />
          </>
        ) : (
          <span className="text-xs text-slate-400">loading…</span>
        )}
      </div>
      {run && (
        <p className="mt-1 truncate text-[11px] text-slate-500">
          started {formatStarted(run.started_at ?? run.created_at)}
          {source && (
            <>
              {" · forked from "}
              <Link to="/runs/$id" params={{ id: source.run_id }} className="font-mono text-blue-700 hover:underline">
                {shortId(source.run_id)}
              </Link>{" "}
              at seq {formatInt(source.seq)}
            </>
          )}
        </p>
      )}
      <dl className="mt-auto grid grid-cols-4 gap-3 pt-2 text-xs" data-testid="compare-totals">
        <Total label="Duration" value={formatDuration(totals.duration_ms)} delta={other && delta(totals.duration_ms, other.duration_ms, formatDuration)} />
        <Total label="LLM calls" value={formatInt(totals.llm_calls)} field="llm_calls" delta={other && delta(totals.llm_calls, other.llm_calls, formatInt)} />
        <Total
          label="Tokens in / out"
          value={`${formatInt(totals.input_tokens)} / ${formatInt(totals.output_tokens)}`}
          delta={other && delta(totals.input_tokens + totals.output_tokens, other.input_tokens + other.output_tokens, (n) => plural(n, "token"))}
        />
        <Total label="Cost" value={formatCost(totals.cost_usd)} field="cost_usd" delta={other && delta(totals.cost_usd, other.cost_usd, formatCost)} />
      </dl>
    </div>
  );
}

function Total({ label, value, delta, field }: { label: string; value: string; delta?: string; field?: string }) {
  return (
    <div className="min-w-0">
      <dt className="text-[11px] text-slate-500">{label}</dt>
      <dd className="truncate font-mono text-slate-800" data-field={field}>
        {value}
      </dd>
      {delta && <dd className="truncate font-mono text-[11px] text-slate-500">{delta}</dd>}
    </div>
  );
}

/** `+1.20 s`, `−$0.0012`, `±0` against the other run. */
function delta(mine: number | null, theirs: number | null, format: (n: number) => string): string | undefined {
  if (mine == null || theirs == null) return undefined;
  const d = mine - theirs;
  if (d === 0) return "same as A";
  return `${d > 0 ? "+" : "−"}${format(Math.abs(d))} vs A`;
}
