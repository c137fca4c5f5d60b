// One attempt of a visit in the inspector: outcome, error, timings (queued,
// started, ended, duration, wait) and, for an LLM call, the provider, model,
// request id, tokens, cost, the rendered prompt messages and the raw response.
import clsx from "clsx";
import type { Schemas } from "../api/client";
import { ErrorBox } from "./RunError";
import { JsonBlock } from "./JsonBlock";
import { StatusBadge } from "./StatusBadge";
import { formatClock, formatCost, formatDuration, formatInt } from "./format";

type Attempt = Schemas["AttemptDetail"];
type Llm = Schemas["LlmCallDetail"];

export function AttemptCard({ attempt }: { attempt: Attempt }) {
  return (
    <section
      data-testid="attempt"
      data-attempt={attempt.attempt}
      data-outcome={attempt.outcome}
      className={clsx("rounded border bg-white", attempt.outcome === "failed" ? "border-red-300" : "border-slate-200")}
    >
      <div className="flex items-center gap-2 border-b border-slate-100 px-2.5 py-1.5">
        <span className="text-xs font-semibold text-slate-800">Attempt {attempt.attempt}</span>
        <StatusBadge status={attempt.outcome} />
        <span className="ml-auto font-mono text-[11px] text-slate-500">{formatDuration(attempt.duration_ms)}</span>
      </div>
      <div className="space-y-2 px-2.5 py-2">
        <dl className="grid grid-cols-[auto_1fr_auto_1fr] gap-x-3 gap-y-0.5 text-[11px]">
          <Term label="queued" value={formatClock(attempt.queued_at)} />
          <Term label="started" value={formatClock(attempt.started_at)} />
          <Term label="ended" value={formatClock(attempt.ended_at)} />
          <Term label="wait" value={attempt.wait_ms != null ? formatDuration(attempt.wait_ms) : "—"} />
        </dl>
        {attempt.error && <ErrorBox error={attempt.error} testId="attempt-error" />}
        {attempt.llm && <LlmCall llm={attempt.llm} />}
      </div>
    </section>
  );
}

function Term({ label, value }: { label: string; value: string }) {
  return (
    <>
      <dt className="text-slate-500">{label}</dt>
      <dd className="font-mono text-slate-800">{value}</dd>
    </>
  );
}

function LlmCall({ llm }: { llm: Llm }) {
  const messages = llm.messages as unknown as { role?: string; content?: unknown }[];
  return (
    <div data-testid="llm-call" className="space-y-2">
      <div className="flex flex-wrap gap-x-4 gap-y-0.5 text-[11px]">
        <span>
          <span className="text-slate-500">provider </span>
          <span className="font-mono" data-testid="llm-provider">{llm.provider}</span>
        </span>
        <span>
          <span className="text-slate-500">model </span>
          <span className="font-mono" data-testid="llm-model">{llm.model}</span>
        </span>
        <span>
          <span className="text-slate-500">request </span>
          <span className="font-mono" data-testid="llm-request-id">{llm.request_id ?? "—"}</span>
        </span>
      </div>
      <div className="flex flex-wrap gap-x-4 text-[11px]">
        <span>
          <span className="text-slate-500">tokens </span>
          <span className="font-mono" data-testid="llm-tokens" data-input={llm.input_tokens} data-output={llm.output_tokens}>
            {formatInt(llm.input_tokens)} in / {formatInt(llm.output_tokens)} out
          </span>
        </span>
        <span>
          <span className="text-slate-500">cost </span>
          <span className="font-mono" data-testid="llm-cost" data-value={llm.cost_usd}>
            {formatCost(llm.cost_usd)}
          </span>
        </span>
      </div>
      <div>
        <h4 className="mb-1 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Prompt</h4>
        <div className="space-y-1" data-testid="llm-messages">
          {messages.map((m, i) => (
            <div key={i} className="rounded border border-slate-200 bg-slate-50">
              <div className="border-b border-slate-200 px-2 py-0.5 font-mono text-[10px] text-slate-500 uppercase">{m.role ?? "?"}</div>
              <pre className="max-h-48 overflow-auto px-2 py-1 font-mono text-[11px] whitespace-pre-wrap break-words text-slate-800">
                {typeof m.content === "string" ? m.content : JSON.stringify(m.content, null, 2)}
              </pre>
            </div>
          ))}
        </div>
      </div>
      <div>
        <h4 className="mb-1 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Response</h4>
        <JsonBlock value={llm.response} testId="llm-response" />
      </div>
    </div>
  );
}
