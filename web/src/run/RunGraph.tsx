// The run's graph, read-only: the bundle's nodes laid out (the bundle's
// `layout`, else dagre), each box coloured by its visits from /nodes. The
// layout is computed once per bundle; summaries only change node data.
import { useMemo } from "react";
import { Background, Controls, ReactFlow, ReactFlowProvider, type Edge } from "@xyflow/react";
import { bundleToGraph, hasLayout, type Bundle, type DefTransition } from "../graph/bundle";
import { layoutGraph } from "../graph/layout";
import { formatInt } from "./format";
import type { NodeSummary } from "./queries";
import { RunNode, type RunFlowNode } from "./RunNode";

const nodeTypes = { run: RunNode };
const fitViewOptions = { padding: 0.15, maxZoom: 1.1 };

function edgeLabel(def: DefTransition): string | undefined {
  const parts: string[] = [];
  if (def.spawn_count != null) parts.push(`×${typeof def.spawn_count === "number" ? formatInt(def.spawn_count) : def.spawn_count}`);
  if (def.foreach != null) parts.push("foreach");
  if (def.on && def.on !== "success") parts.push(`on ${def.on}`);
  if (def.loop != null) parts.push("loop");
  return parts.length ? parts.join(" · ") : undefined;
}

export function RunGraph(props: {
  bundle: Bundle;
  summaries: NodeSummary[] | undefined;
  selectedNode: string | null;
  onSelectNode: (ref: string | null) => void;
}) {
  return (
    <ReactFlowProvider>
      <RunGraphInner {...props} />
    </ReactFlowProvider>
  );
}

function RunGraphInner({
  bundle,
  summaries,
  selectedNode,
  onSelectNode,
}: {
  bundle: Bundle;
  summaries: NodeSummary[] | undefined;
  selectedNode: string | null;
  onSelectNode: (ref: string | null) => void;
}) {
  const base = useMemo(() => {
    const g = bundleToGraph(bundle);
    const positioned = hasLayout(bundle) ? g.nodes : layoutGraph(g.nodes, g.edges);
    const edges: Edge[] = g.edges.map((e) => ({
      id: e.id,
      source: e.source,
      target: e.target,
      label: e.data ? edgeLabel(e.data.def) : undefined,
      labelStyle: { fontSize: 11, fontFamily: "var(--font-mono)" },
      style: { stroke: "#94a3b8" },
      selectable: false,
    }));
    return { nodes: positioned, edges };
  }, [bundle]);

  const bySummary = useMemo(() => new Map((summaries ?? []).map((s) => [s.node, s])), [summaries]);

  const nodes: RunFlowNode[] = useMemo(
    () =>
      base.nodes.map((n) => ({
        id: n.id,
        type: "run",
        position: n.position,
        data: { ref: n.id, kind: n.data.kind, summary: bySummary.get(n.id), selected: n.id === selectedNode },
        draggable: false,
        connectable: false,
      })),
    [base, bySummary, selectedNode],
  );

  return (
    <div className="h-full w-full" data-testid="run-graph">
      <ReactFlow
        nodes={nodes}
        edges={base.edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={fitViewOptions}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        onlyRenderVisibleElements
        onNodeClick={(_, node) => onSelectNode(node.id === selectedNode ? null : node.id)}
        onPaneClick={() => onSelectNode(null)}
        minZoom={0.2}
      >
        <Background gap={16} size={1} color="#e2e8f0" />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
