// The event log's filters: kind, node and failures only (applied by the
// server, GET /events?kind=&node=&failed=, and to live events locally).
import type { Schemas } from "../api/client";
import type { EventFilter } from "./eventWindow";

type EventKind = Schemas["EventBody"]["kind"];

// Every kind the server knows, once: the compiler checks this record against
// the generated OpenAPI types, so a kind added or removed on the server
// fails the typecheck until the list follows.
const KINDS: Record<EventKind, true> = {
  workflow_started: true,
  workflow_completed: true,
  workflow_failed: true,
  workflow_cancelled: true,
  node_started: true,
  node_completed: true,
  node_failed: true,
  node_retrying: true,
  llm_request: true,
  transition_taken: true,
  token_spawned: true,
  token_waiting: true,
  fan_in_completed: true,
  token_merged: true,
  token_cancelled: true,
  context_updated: true,
  artifact_created: true,
  subworkflow_started: true,
  subworkflow_completed: true,
  subworkflow_failed: true,
  snapshot_created: true,
  workflow_forked: true,
};

export const EVENT_KINDS = Object.keys(KINDS) as EventKind[];

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
