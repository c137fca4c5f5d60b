// Keeps the cached runs lists current from GET /api/live: a change patches
// the run where a list holds it, and a new run that matches a list's
// filters is put at its top. Reconnects with backoff; after a reconnect the
// lists are refetched (nothing is replayed on connect).
import { useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useLiveSocket, type SocketState } from "./useLiveSocket";
import type { LiveRun, RunSummary, RunsFilter } from "./queries";

type RunsPage = { items: RunSummary[]; next_cursor?: string | null };
type Change = { type: "run"; run: LiveRun };

function matches(filter: RunsFilter, run: LiveRun): boolean {
  if (filter.status && run.status !== filter.status) return false;
  if (filter.workflow && run.workflow.name !== filter.workflow && run.workflow.id !== filter.workflow) return false;
  if (filter.parent && run.parent_run_id !== filter.parent) return false;
  return true;
}

function patch(data: InfiniteData<RunsPage>, filter: RunsFilter, run: LiveRun): InfiniteData<RunsPage> {
  let found = false;
  const pages = data.pages.map((page) => ({
    ...page,
    items: page.items.flatMap((r) => {
      if (r.id !== run.id) return [r];
      found = true;
      // A run that no longer matches the status filter leaves the list.
      if (!matches(filter, run)) return [];
      return [{ ...r, status: run.status, ended_at: run.ended_at, usage: run.usage }];
    }),
  }));
  if (!found && matches(filter, run) && pages.length > 0) {
    const summary: RunSummary = {
      id: run.id,
      project_id: "",
      workflow: run.workflow,
      status: run.status,
      error: null,
      usage: run.usage,
      parent_run_id: run.parent_run_id,
      // Not in the live message: the next read of the list fills it in.
      forked_from: null,
      created_at: run.created_at,
      started_at: run.created_at,
      ended_at: run.ended_at,
    };
    pages[0] = { ...pages[0], items: [summary, ...pages[0].items] };
  }
  return { ...data, pages };
}

export function useRunsLive(): SocketState {
  const queryClient = useQueryClient();
  return useLiveSocket({
    enabled: true,
    path: () => "/api/live",
    onMessage: (message) => {
      const change = message as Change;
      if (change.type !== "run") return;
      for (const [key, data] of queryClient.getQueriesData<InfiniteData<RunsPage>>({ queryKey: ["runs"] })) {
        if (!data) continue;
        const filter = (key[1] ?? {}) as RunsFilter;
        queryClient.setQueryData(key, patch(data, filter, change.run));
      }
    },
    onReconnect: () => void queryClient.invalidateQueries({ queryKey: ["runs"] }),
  });
}
