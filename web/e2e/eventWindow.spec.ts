// The event log's window (src/run/eventWindow.ts) without a browser: it
// keeps a bounded number of events whatever the log's length, shows every
// row once, and loses no live event, filtered or not.
import { expect, test } from "@playwright/test";
import { EventWindow, PAGE_SIZE, matches, type EventFilter } from "../src/run/eventWindow";
import type { RunEvent } from "../src/run/queries";

const KINDS = ["node_started", "node_completed", "node_failed", "token_spawned"];

function event(seq: number): RunEvent {
  return { run_id: "run_t", seq, ts: "2026-01-01T00:00:00.000Z", kind: KINDS[seq % 4], node: seq % 3 ? "a" : "b", payload: {} } as unknown as RunEvent;
}

/** A server over `log`: pages after a seq with the filter applied, answered when `release()` is called. */
function server(log: RunEvent[], filter: EventFilter) {
  const pending: (() => void)[] = [];
  let calls = 0;
  const fetchPage = (after: number, limit: number) =>
    new Promise<{ items: RunEvent[]; next_cursor: string | null }>((resolve) => {
      calls++;
      pending.push(() => {
        const items = log.filter((e) => e.seq > after && matches(filter, e)).slice(0, limit);
        resolve({ items, next_cursor: items.length === limit ? String(items[items.length - 1].seq) : null });
      });
    });
  return {
    fetchPage,
    get calls() {
      return calls;
    },
    /** Answers every request made so far, then lets the window handle the answers. */
    async release() {
      while (pending.length) pending.shift()!();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

function rows(win: EventWindow, from: number, to: number): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  for (let i = from; i <= to; i++) out.push(win.row(i)?.seq);
  return out;
}

test("unfiltered: 100,000 events scrolled end to end, at most 24 pages held", async () => {
  const log = Array.from({ length: 100_000 }, (_, i) => event(i + 1));
  const none: EventFilter = { kinds: [], failed: false };
  const srv = server(log, none);
  const win = new EventWindow(none, log.length, srv.fetchPage);
  expect(win.count).toBe(100_000);
  for (let start = 0; start < log.length; start += 1_000) {
    win.ensure(start, start + 40);
    await srv.release();
    expect(rows(win, start, start + 40)).toEqual(Array.from({ length: 41 }, (_, i) => start + i + 1));
    expect(win.held).toBeLessThanOrEqual(24 * PAGE_SIZE);
  }
  // Back at the top: the first page was dropped and is read again.
  const before = srv.calls;
  win.ensure(0, 10);
  await srv.release();
  expect(srv.calls).toBe(before + 1);
  expect(win.row(0)?.seq).toBe(1);
});

test("unfiltered: live events extend the log and fill the page on screen", async () => {
  const log = Array.from({ length: 300 }, (_, i) => event(i + 1));
  const none: EventFilter = { kinds: [], failed: false };
  const srv = server(log, none);
  const win = new EventWindow(none, 300, srv.fetchPage);
  win.ensure(280, 299);
  await srv.release();
  const live = [301, 302, 303].map(event);
  log.push(...live);
  win.append(live);
  win.append(live); // a duplicate frame changes nothing
  await srv.release();
  expect(win.count).toBe(303);
  expect(rows(win, 298, 302)).toEqual([299, 300, 301, 302, 303]);
});

test("filtered: pages found in order, live matches appended once, none lost during the tail fetch", async () => {
  const log = Array.from({ length: 2_000 }, (_, i) => event(i + 1));
  const failures: EventFilter = { kinds: ["node_failed"], failed: false };
  const srv = server(log, failures);
  const win = new EventWindow(failures, log.length, srv.fetchPage);
  expect(win.count).toBe(1); // the "loading more" row
  const want = log.filter((e) => matches(failures, e)).map((e) => e.seq);

  // Scroll down the loading row until the end is found; meanwhile events
  // keep arriving live (and are in the server's log too).
  for (let guard = 0; !win.complete && guard < 20; guard++) {
    win.ensure(0, win.count - 1);
    let e: RunEvent;
    do {
      e = event(log.length + 1);
      log.push(e);
      win.append([e]);
    } while (!matches(failures, e));
    await srv.release();
  }
  expect(win.complete).toBe(true);
  const all = log.filter((e) => matches(failures, e)).map((e) => e.seq);
  expect(all.length).toBeGreaterThan(want.length);
  win.ensure(0, win.count - 1);
  await srv.release();
  expect(rows(win, 0, win.count - 1)).toEqual(all);

  // After the end, a live match is appended, a non-match ignored.
  const next = log[log.length - 1].seq;
  const later = [event(next + 1), event(next + 2), event(next + 3), event(next + 4)];
  win.append(later);
  await srv.release();
  expect(rows(win, 0, win.count - 1)).toEqual([...all, ...later.filter((e) => matches(failures, e)).map((e) => e.seq)]);
});

test("reach: a run that ended beyond the last live event is read to its end", async () => {
  const log = Array.from({ length: 500 }, (_, i) => event(i + 1));
  const none: EventFilter = { kinds: [], failed: false };
  const win = new EventWindow(none, 500, server(log, none).fetchPage);
  const byNode: EventFilter = { kinds: [], node: "b", failed: false };
  const srv = server(log, byNode);
  const filtered = new EventWindow(byNode, 500, srv.fetchPage);
  const readAll = async () => {
    for (let guard = 0; !filtered.complete && guard < 20; guard++) {
      filtered.ensure(0, filtered.count - 1);
      await srv.release();
    }
    filtered.ensure(0, filtered.count - 1);
    await srv.release();
  };
  await readAll();
  const before = filtered.count;

  // The run went on to seq 600 while no live event reached the windows.
  for (let s = 501; s <= 600; s++) log.push(event(s));
  win.reach(600);
  expect(win.count).toBe(600);
  filtered.reach(600);
  expect(filtered.complete).toBe(false);
  await readAll();
  expect(filtered.count).toBeGreaterThan(before);
  expect(rows(filtered, 0, filtered.count - 1)).toEqual(log.filter((e) => matches(byNode, e)).map((e) => e.seq));
});
