// The event log: a virtualised list (fixed 24 px rows) over an EventWindow,
// so only the rows on screen are in the DOM and only a bounded number of
// pages in memory. Follows the live stream; while scrolled to the bottom
// it stays at the bottom. A row with a token opens it in the inspector.
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import clsx from "clsx";
import { useVirtualizer } from "@tanstack/react-virtual";
import { api, unwrap } from "../api/client";
import { EventFilters } from "./EventFilters";
import { EventWindow, type EventFilter } from "./eventWindow";
import { isFailure, summarize } from "./eventSummary";
import { formatClock, formatInt } from "./format";
import type { LiveBus } from "./useRunLive";

const ROW = 24;

export function EventLog({
  runId,
  bus,
  nodes,
  live,
  endedAt,
  onSelectToken,
  selectedToken,
}: {
  runId: string;
  bus: LiveBus;
  nodes: string[];
  live: boolean;
  /** The run's last seq once it has ended (its log is complete up to there). */
  endedAt: number | null;
  onSelectToken: (id: string) => void;
  selectedToken: string | null;
}) {
  const [filter, setFilter] = useState<EventFilter>({ kinds: [], failed: false });
  const win = useMemo(
    () =>
      new EventWindow(filter, bus.lastSeq(), async (after, limit) =>
        unwrap(
          await api.GET("/api/runs/{id}/events", {
            params: {
              path: { id: runId },
              query: {
                after,
                limit,
                kind: filter.kinds.length ? filter.kinds.join(",") : undefined,
                node: filter.node,
                failed: filter.failed || undefined,
              },
            },
          }),
        ),
      ),
    [runId, filter, bus],
  );
  useEffect(() => bus.subscribe((events) => win.append(events)), [bus, win]);
  useEffect(() => {
    if (endedAt !== null) win.reach(endedAt);
  }, [win, endedAt]);
  useSyncExternalStore(win.subscribe, win.getVersion);

  const scroller = useRef<HTMLDivElement>(null);
  const count = win.count;
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  useEffect(() => {
    if (count > 0) win.ensure(first, last);
  }, [win, first, last, count]);

  // Follow the tail while the user is at the bottom (a live run starts there).
  const following = useRef(live);
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    following.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW * 1.5;
  };
  useEffect(() => {
    if (following.current && count > 0) virtualizer.scrollToIndex(count - 1, { align: "end" });
  }, [count, virtualizer]);

  return (
    <div className="flex h-full flex-col" data-testid="event-log">
      <div className="flex shrink-0 items-center gap-3 border-b border-slate-200 bg-white px-3 py-1.5">
        <h2 className="text-xs font-semibold tracking-wide text-slate-500 uppercase">Events</h2>
        <span className="font-mono text-[11px] text-slate-500" data-testid="event-count" data-count={count}>
          {formatInt(win.complete ? count : Math.max(0, count - 1))}
          {win.complete ? "" : "+"}
        </span>
        <div className="ml-auto">
          <EventFilters filter={filter} nodes={nodes} onChange={setFilter} />
        </div>
      </div>
      <div ref={scroller} onScroll={onScroll} className="min-h-0 flex-1 overflow-auto bg-white" data-testid="event-scroller">
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {items.map((item) => {
            const e = win.row(item.index);
            return (
              <div
                key={item.key}
                data-testid="event-row"
                data-seq={e?.seq}
                data-kind={e?.kind}
                style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${item.start}px)` }}
                className={clsx(
                  "flex items-center gap-3 border-b border-slate-50 px-3 font-mono text-[11px]",
                  e && isFailure(e) ? "bg-red-50/60 text-red-800" : "text-slate-700",
                  e?.token_id && e.token_id === selectedToken && "bg-blue-50",
                )}
              >
                {e ? (
                  <>
                    <span className="w-12 shrink-0 text-right text-slate-400">{e.seq}</span>
                    <span className="w-20 shrink-0 text-slate-500">{formatClock(e.ts)}</span>
                    <span className={clsx("w-36 shrink-0 truncate", e && isFailure(e) ? "font-semibold text-status-failed" : "text-slate-800")}>
                      {e.kind}
                    </span>
                    <span className="w-20 shrink-0 truncate text-slate-600">{e.node ?? ""}</span>
                    <span className="w-14 shrink-0">
                      {e.token_id && (
                        <button className="text-blue-700 hover:underline" onClick={() => onSelectToken(e.token_id!)}>
                          {e.token_id}
                        </button>
                      )}
                    </span>
                    <span className="min-w-0 truncate text-slate-500">{summarize(e)}</span>
                  </>
                ) : (
                  <span className="text-slate-300">{win.filtered && item.index === count - 1 && !win.complete ? "loading more…" : "…"}</span>
                )}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
