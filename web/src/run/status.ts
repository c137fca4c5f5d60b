// Status in one place: the colour, label and tone of every run and token
// status. The records are exhaustive, so a new status in the OpenAPI types
// is a compile error here rather than a grey box on the page.
import type { Schemas } from "../api/client";

export type RunStatus = Schemas["RunStatus"];
export type TokenStatus = Schemas["TokenStatus"];

/** The five tones the UI shows (colours in index.css, `--color-status-*`). */
export type Tone = "running" | "completed" | "failed" | "waiting" | "cancelled";

export const RUN_STATUSES: RunStatus[] = ["running", "completed", "failed", "cancelled"];

export const RUN_TONE: Record<RunStatus, Tone> = {
  running: "running",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

/** Token statuses grouped into tones: queued and joining visits are "waiting". */
export const TOKEN_TONE: Record<TokenStatus, Tone> = {
  pending: "waiting",
  running: "running",
  retry_wait: "waiting",
  waiting_join: "waiting",
  waiting_child: "waiting",
  completed: "completed",
  merged: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

export const TOKEN_STATUSES = Object.keys(TOKEN_TONE) as TokenStatus[];

/** Tailwind classes per tone: a text colour, a soft background and a border. */
export const TONE_CLASS: Record<Tone, { text: string; bg: string; border: string; dot: string }> = {
  running: { text: "text-status-running", bg: "bg-blue-50", border: "border-status-running", dot: "bg-status-running" },
  completed: { text: "text-status-completed", bg: "bg-green-50", border: "border-status-completed", dot: "bg-status-completed" },
  failed: { text: "text-status-failed", bg: "bg-red-50", border: "border-status-failed", dot: "bg-status-failed" },
  waiting: { text: "text-status-waiting", bg: "bg-amber-50", border: "border-status-waiting", dot: "bg-status-waiting" },
  cancelled: { text: "text-status-cancelled", bg: "bg-slate-100", border: "border-status-cancelled", dot: "bg-status-cancelled" },
};

/** The tone of any status string the API returns (token detail status, attempt outcome). */
export function toneOf(status: string): Tone {
  if (status === "retrying") return "waiting";
  return (TOKEN_TONE as Record<string, Tone | undefined>)[status] ?? "cancelled";
}

export function isLiveRun(status: RunStatus): boolean {
  return status === "running";
}

/** Node-box counts: a node's visits summed per tone. */
export function visitsByTone(visits: Record<string, number>): Record<Tone, number> {
  const out: Record<Tone, number> = { running: 0, completed: 0, failed: 0, waiting: 0, cancelled: 0 };
  for (const [status, n] of Object.entries(visits)) out[toneOf(status)] += n;
  return out;
}
