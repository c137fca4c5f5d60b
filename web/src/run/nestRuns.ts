// Orders a page of runs so that each child run follows its parent when
// both are listed (the API lists newest first, which puts a child above
// its parent), with the depth to indent it by. Children whose parent is
// not in the list keep their place. Linear in the number of runs.
import type { RunSummary } from "./queries";

export type NestedRun = { run: RunSummary; depth: number };

export function nestRuns(runs: RunSummary[]): NestedRun[] {
  const listed = new Set(runs.map((r) => r.id));
  const children = new Map<string, RunSummary[]>();
  for (const r of runs) {
    if (r.parent_run_id && listed.has(r.parent_run_id)) {
      const list = children.get(r.parent_run_id) ?? [];
      list.push(r);
      children.set(r.parent_run_id, list);
    }
  }
  const out: NestedRun[] = [];
  const visit = (r: RunSummary, depth: number) => {
    out.push({ run: r, depth });
    // Oldest child first under its parent, as they were started.
    for (const c of [...(children.get(r.id) ?? [])].reverse()) visit(c, depth + 1);
  };
  for (const r of runs) {
    if (!(r.parent_run_id && listed.has(r.parent_run_id))) visit(r, r.parent_run_id ? 1 : 0);
  }
  return out;
}
