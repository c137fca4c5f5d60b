// The runs list's filters (status, workflow, parent run), written to the
// URL search params so a filtered list can be reloaded and linked.
import { useWorkflowDefs } from "../api/workflowDefs";
import { RUN_STATUSES } from "./status";
import type { RunsFilter } from "./queries";
import { shortId } from "./format";

const select = "rounded border border-slate-300 bg-white px-2 py-1 text-xs";

export function RunsFilters({ filter, onChange }: { filter: RunsFilter; onChange: (f: RunsFilter) => void }) {
  const workflows = useWorkflowDefs();
  return (
    <div className="flex flex-wrap items-center gap-2 text-xs">
      <label className="flex items-center gap-1.5 text-slate-600">
        Status
        <select
          aria-label="Status"
          data-testid="runs-filter-status"
          className={select}
          value={filter.status ?? ""}
          onChange={(e) => onChange({ ...filter, status: (e.target.value || undefined) as RunsFilter["status"] })}
        >
          <option value="">any</option>
          {RUN_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label className="flex items-center gap-1.5 text-slate-600">
        Workflow
        <select
          aria-label="Workflow"
          data-testid="runs-filter-workflow"
          className={select}
          value={filter.workflow ?? ""}
          onChange={(e) => onChange({ ...filter, workflow: e.target.value || undefined })}
        >
          <option value="">any</option>
          {filter.workflow && !workflows.data?.some((w) => w.name === filter.workflow) && (
            <option value={filter.workflow}>{filter.workflow}</option>
          )}
          {workflows.data?.map((w) => (
            <option key={w.id} value={w.name}>
              {w.name}
            </option>
          ))}
        </select>
      </label>
      {filter.parent && (
        <span className="inline-flex items-center gap-1 rounded bg-slate-200 px-2 py-0.5 text-slate-700">
          children of <span className="font-mono">{shortId(filter.parent)}</span>
          <button aria-label="Clear parent filter" className="ml-1 text-slate-500 hover:text-slate-900" onClick={() => onChange({ ...filter, parent: undefined })}>
            ×
          </button>
        </span>
      )}
    </div>
  );
}
