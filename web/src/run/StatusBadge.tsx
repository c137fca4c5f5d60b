// A status as a small pill with a dot: the same look for runs, tokens and
// attempt outcomes, coloured by tone (status.ts).
import clsx from "clsx";
import { TONE_CLASS, toneOf } from "./status";

export function StatusBadge({ status, className }: { status: string; className?: string }) {
  const tone = TONE_CLASS[toneOf(status)];
  return (
    <span
      data-status={status}
      className={clsx(
        "inline-flex items-center gap-1.5 rounded-full border px-2 py-0.5 text-xs font-medium whitespace-nowrap",
        tone.text,
        tone.bg,
        tone.border,
        className,
      )}
    >
      <span className={clsx("size-1.5 rounded-full", tone.dot, status === "running" && "animate-pulse")} />
      {status.replace("_", " ")}
    </span>
  );
}

/** Counts per status as compact chips (zeros left out), e.g. on a sibling set. */
export function StatusCounts({ counts, className }: { counts: Record<string, number>; className?: string }) {
  const entries = Object.entries(counts).filter(([, n]) => n > 0);
  if (entries.length === 0) return <span className="text-xs text-slate-400">none yet</span>;
  return (
    <span className={clsx("inline-flex flex-wrap gap-1", className)}>
      {entries.map(([status, n]) => {
        const tone = TONE_CLASS[toneOf(status)];
        return (
          <span
            key={status}
            data-count={status}
            className={clsx("inline-flex items-center gap-1 rounded px-1.5 py-px font-mono text-[11px]", tone.bg, tone.text)}
            title={status}
          >
            <span className={clsx("size-1.5 rounded-full", tone.dot)} />
            {n.toLocaleString("en-US")} {status.replace("_", " ")}
          </span>
        );
      })}
    </span>
  );
}
