// A bounded window over a run's event log, for a virtualised list. Rows are
// fetched a page at a time when the list scrolls to them and at most
// MAX_PAGES pages of events are kept, so a 100,000-event run never sits in
// memory or the DOM at once. Live events are merged in by seq (duplicates
// are ignored). No React here: the list subscribes to `version`.
import type { RunEvent } from "./queries";

export const PAGE_SIZE = 250;
const MAX_PAGES = 24;
/** Recent live events kept to close the race between a tail fetch and the socket. */
const RECENT_LIVE = 2_000;

export type EventFilter = { kinds: string[]; node?: string; failed: boolean };

export const FAILURE_KINDS = ["node_failed", "node_retrying", "workflow_failed", "subworkflow_failed"];

export type FetchPage = (after: number, limit: number) => Promise<{ items: RunEvent[]; next_cursor?: string | null }>;

type Page = {
  /** The seq the page starts after. */
  after: number;
  /** Its events in order; `null` once evicted (metadata kept in filtered mode). */
  events: RunEvent[] | null;
  /** Rows the page holds (unfiltered: PAGE_SIZE slots; filtered: events found). */
  size: number;
  lastSeq: number;
  loading: boolean;
  used: number;
};

export function isFiltered(f: EventFilter): boolean {
  return f.kinds.length > 0 || !!f.node || f.failed;
}

export function matches(f: EventFilter, e: RunEvent): boolean {
  if (f.kinds.length > 0 && !f.kinds.includes(e.kind)) return false;
  if (f.node && e.node !== f.node) return false;
  if (f.failed && !FAILURE_KINDS.includes(e.kind)) return false;
  return true;
}

export class EventWindow {
  /** Bumped on every visible change (useSyncExternalStore snapshot). */
  version = 0;
  private listeners = new Set<() => void>();
  private notifyQueued = false;
  private clock = 0;
  /** Unfiltered: page index → page, rows are seq − 1. */
  private bySeq = new Map<number, Page>();
  /** Filtered: pages discovered in order; all but the last are full. */
  private found: Page[] = [];
  private done = false;
  private lastSeq: number;
  private recent: RunEvent[] = [];
  readonly filtered: boolean;

  constructor(
    private readonly filter: EventFilter,
    lastSeq: number,
    private readonly fetchPage: FetchPage,
  ) {
    this.filtered = isFiltered(filter);
    this.lastSeq = lastSeq;
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = () => this.version;

  /** Rows the list shows; in filtered mode one more "loading" row until the end is found. */
  get count(): number {
    if (!this.filtered) return this.lastSeq;
    const rows = this.found.reduce((n, p) => n + p.size, 0);
    return this.done ? rows : rows + 1;
  }

  /** Whether every matching event up to now is known (filtered mode). */
  get complete(): boolean {
    return !this.filtered || this.done;
  }

  /** Events held in memory (what the bound is about). */
  get held(): number {
    let n = 0;
    for (const p of this.pages()) n += p.events ? p.events.filter(Boolean).length : 0;
    return n;
  }

  row(index: number): RunEvent | undefined {
    const { page, offset } = this.locate(index);
    return page?.events?.[offset];
  }

  /** Makes sure rows [start, end] are loaded or loading. */
  ensure(start: number, end: number) {
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.floor(end / PAGE_SIZE);
    for (let k = first; k <= last; k++) {
      if (this.filtered) this.ensureFound(k);
      else this.ensureSeqPage(k);
    }
    this.evict();
  }

  /**
   * The run ended at `seq`: rows up to it exist even if the stream did not
   * deliver them (a socket that closed as the run ended). Unfiltered, the
   * count grows and the missing pages are fetched; filtered, a partial last
   * page is read again from its start.
   */
  reach(seq: number) {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    if (this.filtered && this.done) {
      const last = this.found[this.found.length - 1];
      if (last && last.size < PAGE_SIZE) this.found.pop();
      this.done = false;
    }
    this.notify();
  }

  /** Merges events from the live stream (in seq order). */
  append(events: RunEvent[]) {
    let changed = false;
    for (const e of events) {
      if (!this.filtered) {
        if (e.seq > this.lastSeq) {
          this.lastSeq = e.seq;
          changed = true;
        }
        const k = Math.floor((e.seq - 1) / PAGE_SIZE);
        const page = this.bySeq.get(k);
        if (page?.events && !page.events[(e.seq - 1) % PAGE_SIZE]) {
          page.events[(e.seq - 1) % PAGE_SIZE] = e;
          page.lastSeq = Math.max(page.lastSeq, e.seq);
          changed = true;
        }
        continue;
      }
      this.lastSeq = Math.max(this.lastSeq, e.seq);
      if (!matches(this.filter, e)) continue;
      this.recent.push(e);
      if (this.recent.length > RECENT_LIVE) this.recent.splice(0, this.recent.length - RECENT_LIVE);
      if (this.done) changed = this.pushFound(e) || changed;
    }
    if (changed) this.notify();
  }

  private pages(): Page[] {
    return this.filtered ? this.found : [...this.bySeq.values()];
  }

  private locate(index: number): { page: Page | undefined; offset: number } {
    const k = Math.floor(index / PAGE_SIZE);
    const page = this.filtered ? this.found[k] : this.bySeq.get(k);
    if (page) page.used = ++this.clock;
    return { page, offset: index % PAGE_SIZE };
  }

  private ensureSeqPage(k: number) {
    if (k * PAGE_SIZE >= this.lastSeq) return;
    let page = this.bySeq.get(k);
    const top = Math.min(this.lastSeq, (k + 1) * PAGE_SIZE);
    const holes = page?.events ? page.lastSeq < top && !page.loading : true;
    if (page?.loading || (page && !holes)) {
      if (page) page.used = ++this.clock;
      return;
    }
    if (!page) {
      page = { after: k * PAGE_SIZE, events: new Array(PAGE_SIZE), size: PAGE_SIZE, lastSeq: k * PAGE_SIZE, loading: false, used: 0 };
      this.bySeq.set(k, page);
    }
    const p = page;
    p.loading = true;
    p.used = ++this.clock;
    this.fetchPage(p.lastSeq, (k + 1) * PAGE_SIZE - p.lastSeq).then(
      (res) => {
        p.loading = false;
        if (!p.events) return;
        for (const e of res.items) {
          p.events[(e.seq - 1) % PAGE_SIZE] = e;
          p.lastSeq = Math.max(p.lastSeq, e.seq);
        }
        this.evict();
        this.notify();
      },
      () => {
        p.loading = false;
        this.bySeq.delete(k);
      },
    );
  }

  private ensureFound(k: number) {
    const page = this.found[k];
    if (page) {
      page.used = ++this.clock;
      if (page.events || page.loading) return;
      page.loading = true;
      this.fetchPage(page.after, PAGE_SIZE).then(
        (res) => {
          page.loading = false;
          page.events = res.items.slice(0, page.size);
          this.evict();
          this.notify();
        },
        () => {
          page.loading = false;
        },
      );
      return;
    }
    // The loading row: discover the next page after the last one found.
    if (k !== this.found.length || this.done) return;
    const prev = this.found[k - 1];
    if (prev?.loading) return;
    const after = prev ? prev.lastSeq : 0;
    const next: Page = { after, events: [], size: 0, lastSeq: after, loading: true, used: ++this.clock };
    this.found.push(next);
    this.fetchPage(after, PAGE_SIZE).then(
      (res) => {
        next.loading = false;
        next.events = res.items;
        next.size = res.items.length;
        next.lastSeq = res.items.length ? res.items[res.items.length - 1].seq : after;
        if (next.size < PAGE_SIZE || !res.next_cursor) {
          this.done = true;
          for (const e of this.recent) if (e.seq > next.lastSeq) this.pushFound(e);
        }
        if (next.size === 0 && this.found.length > 1) this.found.pop();
        this.evict();
        this.notify();
      },
      () => {
        next.loading = false;
        this.found.pop();
        this.notify();
      },
    );
  }

  /** Adds a matching live event after the end (filtered mode, once the end is known). */
  private pushFound(e: RunEvent): boolean {
    let last = this.found[this.found.length - 1];
    if (last && e.seq <= last.lastSeq) return false;
    if (!last || last.size >= PAGE_SIZE || !last.events) {
      last = { after: last ? last.lastSeq : 0, events: [], size: 0, lastSeq: last ? last.lastSeq : 0, loading: false, used: ++this.clock };
      this.found.push(last);
    }
    last.events!.push(e);
    last.size++;
    last.lastSeq = e.seq;
    return true;
  }

  private evict() {
    const held = this.pages().filter((p) => p.events && !p.loading);
    if (held.length <= MAX_PAGES) return;
    held.sort((a, b) => a.used - b.used);
    const lastFound = this.found[this.found.length - 1];
    for (const p of held.slice(0, held.length - MAX_PAGES)) {
      if (p === lastFound) continue;
      if (this.filtered) p.events = null;
      else this.bySeq.delete(Math.floor(p.after / PAGE_SIZE));
    }
  }

  private notify() {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      this.version++;
      for (const l of this.listeners) l();
    });
  }
}
