// One sibling set as ONE collapsible group: its fan-out and join, member
// counts per status, and, when open, one page of its members at a time
// (GET /tokens?sibling_set=) plus the sets nested inside its branches. A
// 10,000-branch set is a single row until opened, then 50 rows.
import { useState } from "react";
import { ChevronDown, ChevronRight } from "lucide-react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { StatusCounts } from "./StatusBadge";
import { TokenRow } from "./TokenRow";
import { NestedSets } from "./NestedSets";
import { PageButton } from "./PageButton";
import { fetchTokens, keys, type SiblingSet } from "./queries";
import { formatInt } from "./format";

export const MEMBERS_PAGE = 50;

/** What a set's row and its member list are drawn from. */
type GroupProps = {
  runId: string;
  set: SiblingSet;
  depth: number;
  selectedToken: string | null;
  onSelectToken: (id: string) => void;
};

export function SiblingSetGroup({
  runId,
  set,
  depth,
  selectedToken,
  onSelectToken,
}: GroupProps) {
  const [open, setOpen] = useState(false);
  return (
    <div data-testid="sibling-set" data-set={set.id} data-open={open}>
      <button
        type="button"
        data-testid="sibling-set-toggle"
        onClick={() => setOpen((o) => !o)}
        style={{ paddingLeft: 4 + depth * 14 }}
        className="flex w-full flex-wrap items-center gap-x-2 gap-y-1 border-y border-slate-100 bg-slate-50 py-1 pr-2 text-left text-xs hover:bg-slate-100"
      >
        {open ? <ChevronDown className="size-3.5 text-slate-500" /> : <ChevronRight className="size-3.5 text-slate-500" />}
        <span className="font-mono text-[11px] text-slate-500">{set.id}</span>
        <span className="font-medium text-slate-800">
          {set.fan_out_node} → {set.join_node ?? "no join"}
        </span>
        <span className="font-mono text-[11px] text-slate-600" data-testid="sibling-set-total">
          {formatInt(set.total)} branches
        </span>
        {set.fired && <span className="rounded bg-slate-200 px-1 text-[10px] text-slate-600">joined</span>}
        <StatusCounts counts={set.counts} className="basis-full pl-5" />
      </button>
      {open && <Members runId={runId} set={set} depth={depth} selectedToken={selectedToken} onSelectToken={onSelectToken} />}
    </div>
  );
}

function Members({
  runId,
  set,
  depth,
  selectedToken,
  onSelectToken,
}: GroupProps) {
  // Cursors of the pages before the current one, for "previous".
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery({
    queryKey: keys.tokens(runId, { sibling_set: set.id, cursor, limit: MEMBERS_PAGE }),
    queryFn: () => fetchTokens(runId, { sibling_set: set.id, cursor, limit: MEMBERS_PAGE }),
    placeholderData: keepPreviousData,
  });
  const pageIndex = cursors.length - 1;
  const next = page.data?.next_cursor ?? null;
  return (
    <div data-testid="sibling-set-members">
      {page.isPending && <div className="px-4 py-1 text-xs text-slate-400">Loading members…</div>}
      {page.data?.items.map((t) => (
        <TokenRow key={t.id} token={t} depth={depth + 1} selected={t.id === selectedToken} onSelect={onSelectToken} />
      ))}
      <div
        className="flex items-center gap-2 py-1 pr-2 text-[11px] text-slate-500"
        style={{ paddingLeft: 8 + (depth + 1) * 14 }}
      >
        <span data-testid="members-page">
          page {pageIndex + 1} · tokens {formatInt(pageIndex * MEMBERS_PAGE + 1)}–
          {formatInt(pageIndex * MEMBERS_PAGE + (page.data?.items.length ?? 0))}
        </span>
        <PageButton disabled={pageIndex === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ‹ prev
        </PageButton>
        <PageButton disabled={!next} onClick={() => next && setCursors((c) => [...c, next])} testId="members-next">
          next ›
        </PageButton>
      </div>
      <NestedSets runId={runId} parent={set.id} depth={depth + 1} selectedToken={selectedToken} onSelectToken={onSelectToken} />
    </div>
  );
}
