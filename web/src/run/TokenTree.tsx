// The token tree: the root scope's tokens in creation order, each fan-out
// (sibling set) as one collapsible group right after the token whose visit
// spawned it, nested sets inside their parent group. Root tokens are read
// per node (first page of each, filtered to the root scope), so a run with
// 10,000 branch tokens costs one small request per node, never a full scan.
import { useMemo } from "react";
import { useInfiniteQuery, useQueries } from "@tanstack/react-query";
import { NestedSets } from "./NestedSets";
import { SiblingSetGroup } from "./SiblingSetGroup";
import { TokenRow } from "./TokenRow";
import { fetchSets, fetchTokens, keys, tokenOrder, type SiblingSet, type Token } from "./queries";

const ROOT_PER_NODE = 100;

export function TokenTree({
  runId,
  nodeRefs,
  selectedToken,
  onSelectToken,
}: {
  runId: string;
  nodeRefs: string[];
  selectedToken: string | null;
  onSelectToken: (id: string) => void;
}) {
  const perNode = useQueries({
    queries: nodeRefs.map((node) => ({
      queryKey: keys.tokens(runId, { node, limit: ROOT_PER_NODE }),
      queryFn: () => fetchTokens(runId, { node, limit: ROOT_PER_NODE }),
    })),
  });
  const rootSets = useInfiniteQuery({
    queryKey: keys.sets(runId, "root"),
    queryFn: ({ pageParam }) => fetchSets(runId, "root", pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });

  const rootTokens: Token[] = useMemo(
    () =>
      perNode
        .flatMap((q) => q.data?.items ?? [])
        .filter((t) => t.sibling_set == null)
        .sort(tokenOrder),
    // Each query's data object changes identity only when refetched with new content.
    [perNode.map((q) => q.dataUpdatedAt).join(",")],
  );
  const setsByOrigin = useMemo(() => {
    const map = new Map<string, SiblingSet[]>();
    for (const s of (rootSets.data?.pages ?? []).flatMap((p) => p.items)) {
      const list = map.get(s.origin_token_id) ?? [];
      list.push(s);
      map.set(s.origin_token_id, list);
    }
    return map;
  }, [rootSets.data]);
  const placed = useMemo(() => new Set(rootTokens.flatMap((t) => (setsByOrigin.get(t.id) ?? []).map((s) => s.id))), [rootTokens, setsByOrigin]);

  const loading = perNode.some((q) => q.isPending) || rootSets.isPending;
  return (
    <div data-testid="token-tree" className="py-1">
      {loading && rootTokens.length === 0 && <div className="px-3 py-2 text-xs text-slate-400">Loading tokens…</div>}
      {rootTokens.map((t) => (
        <div key={t.id}>
          <TokenRow token={t} selected={t.id === selectedToken} onSelect={onSelectToken} />
          {(setsByOrigin.get(t.id) ?? []).map((s) => (
            <SiblingSetGroup key={s.id} runId={runId} set={s} depth={1} selectedToken={selectedToken} onSelectToken={onSelectToken} />
          ))}
        </div>
      ))}
      {/* Root sets whose origin token is not among the rows read (a node with more than ROOT_PER_NODE visits). */}
      {!loading && (
        <NestedSets runId={runId} parent="root" depth={1} selectedToken={selectedToken} onSelectToken={onSelectToken} exclude={placed} />
      )}
    </div>
  );
}
