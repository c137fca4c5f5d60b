// The visits of one graph node (GET /tokens?node=), paged, with the node's
// summary: picking one opens it in the inspector.
import { useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { PageButton } from "./PageButton";
import { TokenRow } from "./TokenRow";
import { StatusCounts } from "./StatusBadge";
import { fetchTokens, keys, type NodeSummary } from "./queries";
import { formatCost, formatDuration, plural } from "./format";

const PAGE = 50;

export function NodeVisits({
  runId,
  node,
  summary,
  selectedToken,
  onSelectToken,
}: {
  runId: string;
  node: string;
  summary: NodeSummary | undefined;
  selectedToken: string | null;
  onSelectToken: (id: string) => void;
}) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery({
    queryKey: keys.tokens(runId, { node, cursor, limit: PAGE }),
    queryFn: () => fetchTokens(runId, { node, cursor, limit: PAGE }),
    placeholderData: keepPreviousData,
  });
  const next = page.data?.next_cursor ?? null;
  return (
    <div data-testid="node-visits" data-node={node} className="border-b border-slate-200">
      <div className="space-y-1 px-3 pt-2 pb-1">
        <div className="text-sm font-semibold text-slate-900">Visits of {node}</div>
        {summary && (
          <div className="flex flex-wrap gap-x-3 gap-y-1 text-[11px] text-slate-600">
            <StatusCounts counts={summary.visits} />
            <span className="font-mono">
              {plural(summary.attempts, "attempt")} · {plural(summary.retries, "retry", "retries")} · median{" "}
              {formatDuration(summary.duration_ms.median)} · {formatCost(summary.usage.cost_usd)}
            </span>
          </div>
        )}
      </div>
      {page.data?.items.map((t) => (
        <TokenRow key={t.id} token={t} selected={t.id === selectedToken} onSelect={onSelectToken} />
      ))}
      <div className="flex items-center gap-2 px-3 py-1 text-[11px] text-slate-500">
        <span>page {cursors.length}</span>
        <PageButton disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ‹ prev
        </PageButton>
        <PageButton disabled={!next} onClick={() => next && setCursors((c) => [...c, next])}>
          next ›
        </PageButton>
      </div>
    </div>
  );
}
