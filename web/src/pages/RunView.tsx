// The run view (`/runs/$id`, SPEC §10): header with totals and Cancel; the
// graph coloured by node visits; the token tree; the event log; and the
// node inspector for the selected token. Live while the run runs.
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { runViewRoute } from "../router";
import { RunHeader } from "../run/RunHeader";
import { RunGraph } from "../run/RunGraph";
import { TokenTree } from "../run/TokenTree";
import { EventLog } from "../run/EventLog";
import { TokenInspector } from "../run/TokenInspector";
import { NodeVisits } from "../run/NodeVisits";
import { useRunLive } from "../run/useRunLive";
import { fetchBundle, fetchNodes, fetchRun, keys } from "../run/queries";

export function RunViewPage() {
  const { id } = runViewRoute.useParams();
  // Remount per run so selection, filters and the live stream start afresh.
  return <RunView key={id} runId={id} />;
}

function RunView({ runId }: { runId: string }) {
  const run = useQuery({
    queryKey: keys.run(runId),
    queryFn: () => fetchRun(runId),
    // An unknown run stays unknown: say so at once instead of asking again.
    retry: (count, error) => (error as { status?: number }).status !== 404 && count < 1,
  });
  const workflow = run.data?.workflow;
  const bundle = useQuery({
    queryKey: keys.bundle(workflow?.id ?? "", workflow?.version ?? 0),
    queryFn: () => fetchBundle(workflow!.id, workflow!.version),
    enabled: !!workflow,
    staleTime: Infinity,
  });
  const nodes = useQuery({ queryKey: keys.nodes(runId), queryFn: () => fetchNodes(runId), enabled: !!run.data });
  const { bus } = useRunLive(run.data);
  const [selectedToken, setSelectedToken] = useState<string | null>(null);
  const [selectedNode, setSelectedNode] = useState<string | null>(null);

  if (run.isPending) return <div className="p-6 text-sm text-slate-500">Loading run…</div>;
  if (run.isError) return <div className="p-6 text-sm text-status-failed">{run.error.message}</div>;
  const nodeRefs = bundle.data?.nodes.map((n) => n.ref) ?? [];
  const live = run.data.status === "running";

  return (
    <div className="flex h-full flex-col" data-testid="run-view" data-run={runId}>
      <RunHeader run={run.data} />
      <div className="grid min-h-0 flex-1 grid-cols-[minmax(0,1fr)_minmax(380px,36%)]">
        <div className="flex min-h-0 flex-col border-r border-slate-200">
          <div className="h-[46%] min-h-48 shrink-0 bg-slate-50">
            {bundle.data ? (
              <RunGraph bundle={bundle.data} summaries={nodes.data?.items} selectedNode={selectedNode} onSelectNode={setSelectedNode} />
            ) : (
              <div className="p-4 text-xs text-slate-400">{bundle.isError ? bundle.error.message : "Loading graph…"}</div>
            )}
          </div>
          <div className="min-h-0 flex-1 border-t border-slate-200">
            <EventLog
              runId={runId}
              bus={bus}
              nodes={nodeRefs}
              live={live}
              endedAt={live ? null : run.data.last_seq}
              selectedToken={selectedToken}
              onSelectToken={setSelectedToken}
            />
          </div>
        </div>
        <aside className="flex min-h-0 flex-col bg-white">
          <div className="flex max-h-[45%] min-h-32 shrink-0 flex-col border-b border-slate-200">
            <h2 className="shrink-0 border-b border-slate-200 px-3 py-1.5 text-xs font-semibold tracking-wide text-slate-500 uppercase">
              Tokens
            </h2>
            <div className="min-h-0 overflow-auto">
              {bundle.data && (
                <TokenTree runId={runId} nodeRefs={nodeRefs} selectedToken={selectedToken} onSelectToken={setSelectedToken} />
              )}
            </div>
          </div>
          <div className="min-h-0 flex-1 overflow-auto" data-testid="inspector-pane">
            {selectedNode && (
              <NodeVisits
                key={selectedNode}
                runId={runId}
                node={selectedNode}
                summary={nodes.data?.items.find((n) => n.node === selectedNode)}
                selectedToken={selectedToken}
                onSelectToken={setSelectedToken}
              />
            )}
            {selectedToken ? (
              <TokenInspector runId={runId} tokenId={selectedToken} onSelectToken={setSelectedToken} />
            ) : (
              !selectedNode && (
                <div className="p-4 text-xs text-slate-400">
                  Select a token in the tree, an event, or a node on the graph to inspect a visit.
                </div>
              )
            )}
          </div>
        </aside>
      </div>
    </div>
  );
}
