// Follows one run's live stream (GET /api/runs/{id}/live?after=SEQ) while it
// runs: hands each frame's events to the subscribers (the event log) and
// refreshes the run's views (run, nodes, sibling sets, tokens) at most every
// 500 ms, never once per event. A dropped socket resumes after the last seq.
import { useEffect, useMemo, useRef } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { keys, type Run, type RunEvent } from "./queries";
import { useLiveSocket, type SocketState } from "./useLiveSocket";

const REFRESH_MS = 500;

export type LiveBus = {
  /** The highest seq seen (from the run or the stream). */
  lastSeq: () => number;
  subscribe: (listener: (events: RunEvent[]) => void) => () => void;
};

type Frame = { type: "events"; events: RunEvent[] } | { type: "end"; status: string; last_seq: number };

export function useRunLive(run: Run | undefined): { bus: LiveBus; socket: SocketState } {
  const queryClient = useQueryClient();
  const runId = run?.id;
  // Taken from the run once; afterwards only the stream moves it, so that a
  // reconnect asks for every event the subscribers have not been handed.
  const lastSeq = useRef<number | null>(null);
  if (run && lastSeq.current === null) lastSeq.current = run.last_seq;
  const listeners = useRef(new Set<(events: RunEvent[]) => void>());
  const refresh = useRef<{ timer?: ReturnType<typeof setTimeout>; last: number }>({ last: 0 });

  const bus = useMemo<LiveBus>(
    () => ({
      lastSeq: () => lastSeq.current ?? 0,
      subscribe: (listener) => {
        listeners.current.add(listener);
        return () => listeners.current.delete(listener);
      },
    }),
    [],
  );

  // Throttle: refresh now if the last refresh is old enough, else once at the end of the window.
  const scheduleRefresh = (final: boolean) => {
    if (!runId) return;
    const r = refresh.current;
    const run = () => {
      r.timer = undefined;
      r.last = Date.now();
      void queryClient.invalidateQueries({ queryKey: keys.run(runId) });
      void queryClient.invalidateQueries({ queryKey: keys.runView(runId) });
    };
    if (final) {
      clearTimeout(r.timer);
      run();
      return;
    }
    if (r.timer) return;
    const wait = Math.max(0, r.last + REFRESH_MS - Date.now());
    r.timer = setTimeout(run, wait);
  };

  useEffect(() => () => clearTimeout(refresh.current.timer), []);

  const socket = useLiveSocket({
    enabled: !!run && run.status === "running",
    path: () => (runId ? `/api/runs/${runId}/live?after=${lastSeq.current ?? 0}` : null),
    onMessage: (message) => {
      const frame = message as Frame;
      if (frame.type === "events") {
        const fresh = frame.events.filter((e) => e.seq > (lastSeq.current ?? 0));
        if (fresh.length === 0) return;
        lastSeq.current = fresh[fresh.length - 1].seq;
        for (const l of listeners.current) l(fresh);
        scheduleRefresh(false);
        return;
      }
      if (frame.type === "end") {
        scheduleRefresh(true);
        return true;
      }
    },
    onReconnect: () => scheduleRefresh(false),
  });

  return { bus, socket };
}
