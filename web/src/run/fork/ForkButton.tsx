// The node inspector's *Fork from here*: opens the fork dialog for the
// inspected visit's node, over the bundle of the run's version (both read
// from the run view's cache).
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { GitBranch } from "lucide-react";
import { fetchBundle, fetchRun, keys } from "../queries";
import { ForkDialog } from "./ForkDialog";

export function ForkButton({ runId, node }: { runId: string; node: string }) {
  const [open, setOpen] = useState(false);
  const run = useQuery({ queryKey: keys.run(runId), queryFn: () => fetchRun(runId) });
  const workflow = run.data?.workflow;
  const bundle = useQuery({
    queryKey: keys.bundle(workflow?.id ?? "", workflow?.version ?? 0),
    queryFn: () => fetchBundle(workflow!.id, workflow!.version),
    enabled: !!workflow,
    staleTime: Infinity,
  });
  return (
    <>
      <button
        type="button"
        className="inline-flex items-center gap-1 rounded border border-slate-300 bg-white px-2 py-0.5 text-[12px] font-medium text-slate-700 hover:border-blue-400 hover:text-blue-700 disabled:opacity-40"
        disabled={!bundle.data}
        onClick={() => setOpen(true)}
        title="Start a new run from this node, with changed prompts or models"
      >
        <GitBranch size={12} /> Fork from here
      </button>
      {open && bundle.data && workflow && (
        <ForkDialog runId={runId} version={workflow.version} node={node} bundle={bundle.data} onClose={() => setOpen(false)} />
      )}
    </>
  );
}
