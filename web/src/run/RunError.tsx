// A run or attempt error: code, message, where it happened, and its causes
// (a failed child run nests the root cause under SUBWORKFLOW_FAILED).
import type { Schemas } from "../api/client";

type ErrorLike = Schemas["RunError"];

export function ErrorBox({ error, testId }: { error: ErrorLike; testId?: string }) {
  const chain: ErrorLike[] = [];
  for (let e: ErrorLike | null | undefined = error; e; e = e.cause) chain.push(e);
  return (
    <div data-testid={testId} className="rounded border border-red-200 bg-red-50 px-3 py-2 text-xs text-red-900">
      {chain.map((e, i) => (
        <div key={i} className={i > 0 ? "mt-1.5 border-l-2 border-red-200 pl-2" : undefined}>
          <div className="flex flex-wrap items-baseline gap-x-2">
            {i > 0 && <span className="text-red-500">caused by</span>}
            <span className="font-mono font-semibold text-status-failed">{e.code}</span>
            <Where error={e} />
          </div>
          <div className="mt-0.5 break-words">{e.message}</div>
        </div>
      ))}
    </div>
  );
}

function Where({ error }: { error: ErrorLike }) {
  const parts = [
    error.node && `node ${error.node}`,
    error.action && `action ${error.action}`,
    error.attempt != null && `attempt ${error.attempt}`,
  ].filter(Boolean);
  if (parts.length === 0) return null;
  return <span className="font-mono text-[11px] text-red-700/80">{parts.join(" · ")}</span>;
}
