// The run view's header: workflow and version (a link to the editor),
// status, totals for this run and with its child runs, parent and child
// links, the fork source of a forked run, *Compare with…*, Cancel, and the
// run's error when it failed.
import { Link } from "@tanstack/react-router";
import { forkedFrom } from "../api/fork";
import { CancelButton } from "./CancelButton";
import { ComparePicker } from "./compare/ComparePicker";
import { ErrorBox } from "./RunError";
import { StatusBadge } from "./StatusBadge";
import { elapsedMs, formatCost, formatDuration, formatInt, formatStarted, plural, shortId } from "./format";
import type { Run, Usage } from "./queries";
import { useNow } from "./useNow";

const MAX_CHILD_LINKS = 8;

export function RunHeader({ run }: { run: Run }) {
  const live = run.status === "running";
  const now = useNow(live);
  const duration = elapsedMs(run.started_at ?? run.created_at, run.ended_at, now);
  const hasChildren = run.children.length > 0;
  const source = forkedFrom(run);
  return (
    <header className="shrink-0 border-b border-slate-200 bg-white px-4 py-2.5">
      <div className="flex flex-wrap items-center gap-x-3 gap-y-1">
        <Link
          to="/workflows/$name"
          params={{ name: run.workflow.name }}
          search={{ version: run.workflow.version }}
          className="text-base font-semibold text-slate-900 hover:text-blue-700 hover:underline"
          data-testid="run-workflow"
        >
          {run.workflow.name}
          <span className="ml-1.5 font-mono text-sm font-normal text-slate-500">v{run.workflow.version}</span>
        </Link>
        <span data-testid="run-status">
          <StatusBadge status={run.status} />
        </span>
        <span className="font-mono text-xs text-slate-500" title={run.id}>
          {run.id}
        </span>
        <span className="ml-auto flex items-center gap-2">
          <ComparePicker run={run} />
          <CancelButton runId={run.id} ended={!live} />
        </span>
      </div>
      <div className="mt-2 flex flex-wrap items-start gap-x-6 gap-y-1.5 text-xs">
        <Fact label="Started" value={formatStarted(run.started_at ?? run.created_at)} />
        <Fact label="Duration" value={formatDuration(duration)} testId="run-duration" />
        <UsageFacts usage={run.usage} label="This run" testId="run-usage" />
        {hasChildren && <UsageFacts usage={run.usage_total} label="With child runs" testId="run-usage-total" />}
        {source && (
          <Fact
            label="Forked from"
            value={
              <span data-testid="forked-from">
                <Link to="/runs/$id" params={{ id: source.run_id }} className="text-blue-700 hover:underline" title={source.run_id}>
                  {shortId(source.run_id)}
                </Link>{" "}
                <span className="text-slate-500">at seq {formatInt(source.seq)}</span>
              </span>
            }
          />
        )}
        {run.parent_run_id && (
          <Fact
            label="Parent run"
            value={
              <Link to="/runs/$id" params={{ id: run.parent_run_id }} className="text-blue-700 hover:underline" data-testid="parent-run">
                {shortId(run.parent_run_id)}
              </Link>
            }
          />
        )}
        {hasChildren && (
          <Fact
            label={`Child runs (${run.children.length})`}
            value={
              <span className="flex flex-wrap gap-x-2" data-testid="child-runs">
                {run.children.slice(0, MAX_CHILD_LINKS).map((c) => (
                  <Link key={c} to="/runs/$id" params={{ id: c }} className="text-blue-700 hover:underline">
                    {shortId(c)}
                  </Link>
                ))}
                {run.children.length > MAX_CHILD_LINKS && (
                  <Link to="/runs" search={{ parent: run.id }} className="text-slate-500 hover:underline">
                    +{run.children.length - MAX_CHILD_LINKS} more
                  </Link>
                )}
              </span>
            }
          />
        )}
      </div>
      {run.error && (
        <div className="mt-2">
          <ErrorBox error={run.error} testId="run-error" />
        </div>
      )}
    </header>
  );
}

function Fact({ label, value, testId }: { label: string; value: React.ReactNode; testId?: string }) {
  return (
    <div className="flex flex-col">
      <span className="text-[11px] text-slate-500">{label}</span>
      <span className="font-mono text-slate-800" data-testid={testId}>
        {value}
      </span>
    </div>
  );
}

function UsageFacts({ usage, label, testId }: { usage: Usage; label: string; testId: string }) {
  return (
    <div className="flex flex-col" data-testid={testId}>
      <span className="text-[11px] text-slate-500">{label}</span>
      <span className="flex gap-3 font-mono text-slate-800">
        <span data-field="llm_calls" title="LLM calls">
          {plural(usage.llm_calls, "call")}
        </span>
        <span data-field="tokens" title="input / output tokens">
          {formatInt(usage.input_tokens)} in / {formatInt(usage.output_tokens)} out
        </span>
        <span data-field="cost_usd" data-value={usage.cost_usd} title="cost">
          {formatCost(usage.cost_usd)}
        </span>
      </span>
    </div>
  );
}
