// The sibling sets spawned inside one scope (`?parent=root` or a set id),
// a page at a time: each is a SiblingSetGroup, so nesting follows the
// fan-outs however many sets there are.
import { useInfiniteQuery } from "@tanstack/react-query";
import { SiblingSetGroup } from "./SiblingSetGroup";
import { PageButton } from "./PageButton";
import { fetchSets, keys } from "./queries";

export function NestedSets({
  runId,
  parent,
  depth,
  selectedToken,
  onSelectToken,
  exclude,
}: {
  runId: string;
  parent: string;
  depth: number;
  selectedToken: string | null;
  onSelectToken: (id: string) => void;
  /** Sets already shown elsewhere (under their origin token). */
  exclude?: Set<string>;
}) {
  const sets = useInfiniteQuery({
    queryKey: keys.sets(runId, parent),
    queryFn: ({ pageParam }) => fetchSets(runId, parent, pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = (sets.data?.pages ?? []).flatMap((p) => p.items).filter((s) => !exclude?.has(s.id));
  return (
    <>
      {items.map((s) => (
        <SiblingSetGroup key={s.id} runId={runId} set={s} depth={depth} selectedToken={selectedToken} onSelectToken={onSelectToken} />
      ))}
      {sets.hasNextPage && (
        <div className="py-1 text-[11px]" style={{ paddingLeft: 8 + depth * 14 }}>
          <PageButton disabled={sets.isFetchingNextPage} onClick={() => void sets.fetchNextPage()}>
            more sets…
          </PageButton>
        </div>
      )}
    </>
  );
}
