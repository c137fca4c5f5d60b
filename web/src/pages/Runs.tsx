// The runs list (`/runs`, SPEC §10): filters in the URL, pages of 50 with
// "load more", kept live from /api/live.
import { useMemo } from "react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import clsx from "clsx";
import { runsRoute } from "../router";
import { RunsFilters } from "../run/RunsFilters";
import { RunsTable } from "../run/RunsTable";
import { fetchRuns, keys, type RunsFilter } from "../run/queries";
import { useRunsLive } from "../run/useRunsLive";
import { useNow } from "../run/useNow";

export function RunsPage() {
  const filter: RunsFilter = runsRoute.useSearch();
  const navigate = useNavigate({ from: "/runs" });
  const socket = useRunsLive();
  const runs = useInfiniteQuery({
    queryKey: keys.runs(filter),
    queryFn: ({ pageParam }) => fetchRuns(filter, pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = useMemo(() => runs.data?.pages.flatMap((p) => p.items) ?? [], [runs.data]);
  const now = useNow(items.some((r) => r.status === "running"));

  return (
    <div className="flex h-full flex-col" data-testid="runs-page">
      <div className="flex shrink-0 flex-wrap items-center gap-4 border-b border-slate-200 bg-white px-4 py-2.5">
        <h1 className="text-base font-semibold text-slate-900">Runs</h1>
        <RunsFilters filter={filter} onChange={(f) => void navigate({ search: f })} />
        <span className="ml-auto inline-flex items-center gap-1.5 text-[11px] text-slate-500" data-testid="live-state" data-state={socket}>
          <span className={clsx("size-1.5 rounded-full", socket === "open" ? "bg-status-completed" : "bg-status-waiting")} />
          {socket === "open" ? "live" : socket === "closed" ? "reconnecting…" : "connecting…"}
        </span>
      </div>
      <div className="min-h-0 flex-1 overflow-auto">
        {runs.isPending && <div className="p-4 text-xs text-slate-400">Loading runs…</div>}
        {runs.isError && <div className="p-4 text-xs text-status-failed">{runs.error.message}</div>}
        {runs.data && items.length === 0 && <div className="p-6 text-sm text-slate-500">No runs match these filters.</div>}
        {items.length > 0 && <RunsTable runs={items} now={now} />}
        {runs.hasNextPage && (
          <div className="p-3 text-center">
            <button
              className="rounded border border-slate-300 bg-white px-3 py-1 text-xs hover:bg-slate-50 disabled:opacity-50"
              disabled={runs.isFetchingNextPage}
              onClick={() => void runs.fetchNextPage()}
              data-testid="runs-more"
            >
              {runs.isFetchingNextPage ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </div>
    </div>
  );
}
