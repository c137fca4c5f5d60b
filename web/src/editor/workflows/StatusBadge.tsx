// A run status as a small dot + word, in the shared status colours
// (index.css): running blue, completed green, failed red, cancelled slate.
import type { Schemas } from "../../api/client";

export type RunStatus = Schemas["RunStatus"];

const LOOK: Record<RunStatus, string> = {
  running: "bg-status-running",
  completed: "bg-status-completed",
  failed: "bg-status-failed",
  cancelled: "bg-status-cancelled",
};

export function StatusBadge({ status }: { status: RunStatus }) {
  return (
    <span className="inline-flex items-center gap-1.5 text-[12px] font-medium text-slate-700" data-status={status}>
      <span className={`h-2 w-2 rounded-full ${LOOK[status]}`} />
      {status}
    </span>
  );
}
