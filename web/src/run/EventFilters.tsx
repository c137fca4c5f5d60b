// The event log's filters: kind, node and failures only (applied by the
// server, GET /events?kind=&node=&failed=, and to live events locally).
import type { EventFilter } from "./eventWindow";

export const EVENT_KINDS = [
  "workflow_started",
  "workflow_completed",
  "workflow_failed",
  "workflow_cancelled",
  "node_started",
  "node_completed",
  "node_failed",
  "node_retrying",
  "llm_request",
  "transition_taken",
  "token_spawned",
  "token_waiting",
  "fan_in_completed",
  "token_merged",
  "token_cancelled",
  "context_updated",
  "artifact_created",
  "subworkflow_started",
  "subworkflow_completed",
  "subworkflow_failed",
  "snapshot_created",
  "workflow_forked",
];

const select = "rounded border border-slate-300 bg-white px-1.5 py-0.5 text-xs";

export function EventFilters({
  filter,
  nodes,
  onChange,
}: {
  filter: EventFilter;
  nodes: string[];
  onChange: (f: EventFilter) => void;
}) {
  return (
    <div className="flex items-center gap-2 text-xs">
      <select
        aria-label="Event kind"
        data-testid="filter-kind"
        className={select}
        value={filter.kinds[0] ?? ""}
        onChange={(e) => onChange({ ...filter, kinds: e.target.value ? [e.target.value] : [] })}
      >
        <option value="">all kinds</option>
        {EVENT_KINDS.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
      <select
        aria-label="Node"
        data-testid="filter-node"
        className={select}
        value={filter.node ?? ""}
        onChange={(e) => onChange({ ...filter, node: e.target.value || undefined })}
      >
        <option value="">all nodes</option>
        {nodes.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <label className="inline-flex items-center gap-1 text-slate-700">
        <input
          type="checkbox"
          data-testid="filter-failed"
          checked={filter.failed}
          onChange={(e) => onChange({ ...filter, failed: e.target.checked })}
        />
        failures only
      </label>
    </div>
  );
}
