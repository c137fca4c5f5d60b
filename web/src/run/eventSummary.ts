// A one-line summary of an event's payload for the log: the facts a reader
// scans for (attempt, error code, duration, sibling set), not the whole JSON.
import type { RunEvent } from "./queries";
import { FAILURE_KINDS } from "./eventWindow";

export function isFailure(e: RunEvent): boolean {
  return FAILURE_KINDS.includes(e.kind);
}

export function summarize(e: RunEvent): string {
  const p = (e.payload ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  const err = p.error as { code?: string; message?: string } | undefined;
  if (typeof p.attempt === "number") parts.push(`attempt ${p.attempt}`);
  if (err?.code) parts.push(`${err.code}: ${err.message ?? ""}`);
  if (typeof p.duration_ms === "number") parts.push(`${p.duration_ms} ms`);
  if (typeof p.delay_ms === "number") parts.push(`retry in ${p.delay_ms} ms`);
  if (typeof p.sibling_set === "string") parts.push(p.sibling_set);
  if (typeof p.index === "number" && typeof p.total === "number") parts.push(`branch ${p.index + 1}/${p.total}`);
  if (typeof p.model === "string") parts.push(`${p.provider ?? ""} ${p.model}`.trim());
  if (typeof p.to === "string") parts.push(`→ ${p.to}`);
  if (Array.isArray(p.paths)) parts.push(p.paths.join(", "));
  if (typeof p.child_run_id === "string") parts.push(p.child_run_id);
  if (typeof p.reason === "string") parts.push(p.reason);
  if (typeof p.from_run_id === "string") parts.push(`from ${p.from_run_id} at seq ${String(p.from_seq)} · v${String(p.version)}`);
  return parts.join(" · ");
}
