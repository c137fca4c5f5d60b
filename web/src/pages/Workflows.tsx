// The Workflows page (`/`): the default project's workflows with their
// latest version and last run, and "New workflow".
import { Link } from "@tanstack/react-router";
import { useWorkflowDefs } from "../api/workflowDefs";
import { LastRun } from "../editor/workflows/LastRun";
import { NewWorkflow } from "../editor/workflows/NewWorkflow";
import { ago } from "../editor/workflows/time";

export function WorkflowsPage() {
  const query = useWorkflowDefs();
  const items = query.data ?? [];
  return (
    <div className="mx-auto max-w-5xl px-6 py-6">
      <div className="mb-5 flex items-start justify-between gap-4">
        <div>
          <h1 className="text-lg font-semibold text-slate-900">Workflows</h1>
          <p className="text-[13px] text-slate-500">Definitions in the default project. Open one to edit it, or run it from the editor.</p>
        </div>
        <NewWorkflow taken={items.map((w) => w.name)} />
      </div>
      {query.isPending && <p className="text-[13px] text-slate-500">Loading…</p>}
      {query.isError && (
        <p role="alert" className="text-[13px] text-red-700">
          Could not list workflows: {query.error.message}
        </p>
      )}
      {query.isSuccess && items.length === 0 && (
        <div className="rounded-lg border border-dashed border-slate-300 bg-white px-6 py-10 text-center" data-testid="workflows-empty">
          <h2 className="text-[15px] font-semibold text-slate-800">No workflows yet</h2>
          <p className="mx-auto mt-1 max-w-md text-[13px] text-slate-500">
            Type a name above and press <b>New workflow</b>: the editor opens with one node. Drag nodes from the palette, connect them, then
            <b> Save</b> and <b>Run</b>. Or save a YAML file with <code className="font-mono">braid</code> or <code className="font-mono">POST /api/workflow-defs</code>.
          </p>
        </div>
      )}
      {items.length > 0 && (
        <table className="w-full overflow-hidden rounded-lg border border-slate-200 bg-white text-[13px]" data-testid="workflows-table">
          <thead className="bg-slate-50 text-left text-[11px] font-semibold tracking-wide text-slate-500 uppercase">
            <tr>
              <th className="px-4 py-2">Name</th>
              <th className="px-4 py-2">Latest version</th>
              <th className="px-4 py-2">Created</th>
              <th className="px-4 py-2">Last run</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {items.map((w) => (
              <tr key={w.id} className="hover:bg-slate-50" data-testid={`workflow-row-${w.name}`}>
                <td className="px-4 py-2">
                  <Link to="/workflows/$name" params={{ name: w.name }} className="font-mono font-medium text-blue-700 hover:underline">
                    {w.name}
                  </Link>
                </td>
                <td className="px-4 py-2 font-mono text-slate-700">v{w.latest_version}</td>
                <td className="px-4 py-2 text-slate-500" title={w.created_at}>
                  {ago(w.created_at)}
                </td>
                <td className="px-4 py-2">
                  <LastRun workflow={w.name} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
