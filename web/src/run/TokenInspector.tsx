// The node inspector: one visit (GET /api/runs/{id}/tokens/{token_id}) with
// its input, result, writes, usage and every attempt; a workflow_call links
// to its child run; *Fork from here* starts a new run at its node (SPEC
// §5a). Refreshed with the run's view while the run is live.
import { Link } from "@tanstack/react-router";
import { useQuery } from "@tanstack/react-query";
import { AttemptCard } from "./AttemptCard";
import { JsonBlock } from "./JsonBlock";
import { ForkButton } from "./fork/ForkButton";
import { StatusBadge } from "./StatusBadge";
import { fetchToken, keys, type TokenDetail } from "./queries";
import { formatCost, formatInt, plural, shortId } from "./format";

export function TokenInspector({
  runId,
  tokenId,
  onSelectToken,
}: {
  runId: string;
  tokenId: string;
  onSelectToken: (id: string) => void;
}) {
  const q = useQuery({ queryKey: keys.token(runId, tokenId), queryFn: () => fetchToken(runId, tokenId) });
  if (q.isPending) return <div className="p-3 text-xs text-slate-400">Loading {tokenId}…</div>;
  if (q.isError) return <div className="p-3 text-xs text-status-failed">{q.error.message}</div>;
  return <Detail token={q.data} runId={runId} onSelectToken={onSelectToken} />;
}

function Detail({ token, runId, onSelectToken }: { token: TokenDetail; runId: string; onSelectToken: (id: string) => void }) {
  return (
    <div data-testid="inspector" data-token={token.id} className="space-y-3 p-3">
      <div className="flex flex-wrap items-center gap-2">
        <span className="text-sm font-semibold text-slate-900">{token.node}</span>
        <span className="font-mono text-[11px] text-slate-500">{token.id}</span>
        <StatusBadge status={token.status} />
        {token.branch && (
          <span className="font-mono text-[11px] text-slate-600">
            branch {token.branch.index + 1} of {formatInt(token.branch.total)}
            {token.sibling_set && ` · ${token.sibling_set}`}
          </span>
        )}
        <span className="ml-auto">
          <ForkButton runId={runId} node={token.node} />
        </span>
      </div>
      <div className="flex flex-wrap gap-x-4 gap-y-0.5 text-[11px]">
        {token.parent_token_id && (
          <span>
            <span className="text-slate-500">parent </span>
            <button className="font-mono text-blue-700 hover:underline" onClick={() => onSelectToken(token.parent_token_id!)}>
              {token.parent_token_id}
            </button>
          </span>
        )}
        <span data-testid="inspector-usage">
          <span className="text-slate-500">usage </span>
          <span className="font-mono">
            {plural(token.usage.llm_calls, "call")} · {formatInt(token.usage.input_tokens)} in / {formatInt(token.usage.output_tokens)} out ·{" "}
            {formatCost(token.usage.cost_usd)}
          </span>
        </span>
        {token.first_seq != null && (
          <span className="font-mono text-slate-500">
            events {token.first_seq}–{token.last_seq}
          </span>
        )}
        {token.child_run_id && (
          <span>
            <span className="text-slate-500">child run </span>
            <Link to="/runs/$id" params={{ id: token.child_run_id }} className="font-mono text-blue-700 hover:underline" data-testid="child-run-link">
              {shortId(token.child_run_id)}
            </Link>
          </span>
        )}
      </div>
      <Section title="Input">
        <JsonBlock value={token.input} testId="inspector-input" />
      </Section>
      <Section title="Result">
        <JsonBlock value={token.result} testId="inspector-result" />
      </Section>
      <Section title="Writes">
        {token.writes.length === 0 ? (
          <span className="text-[11px] text-slate-400">none</span>
        ) : (
          <ul className="flex flex-wrap gap-1" data-testid="inspector-writes">
            {token.writes.map((w, i) => (
              <li key={i} className="rounded bg-slate-100 px-1.5 font-mono text-[11px] text-slate-700">
                {w}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title={`Attempts (${token.attempts.length})`}>
        <div className="space-y-2">
          {token.attempts.map((a) => (
            <AttemptCard key={a.attempt} attempt={a} />
          ))}
        </div>
      </Section>
    </div>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section>
      <h3 className="mb-1 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">{title}</h3>
      {children}
    </section>
  );
}
