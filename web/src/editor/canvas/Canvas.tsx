// The editor's React Flow canvas. Nodes and edges are derived from the
// bundle; only what React Flow measures (sizes) and in-progress drags live
// here. Positions go back into `bundle.layout` when a drag ends, new edges
// and deletions go back as bundle edits, palette drops add nodes.
import { useCallback, useEffect, useMemo, useState, type DragEvent } from "react";
import {
  Background,
  Controls,
  MarkerType,
  ReactFlow,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type EdgeChange,
  type EdgeTypes,
  type NodeChange,
  type NodeTypes,
} from "@xyflow/react";
import { bundleToGraph, type GraphEdge, type GraphNode } from "../../graph/bundle";
import { NODE_HEIGHT, NODE_WIDTH } from "../../graph/layout";
import { PALETTE_MIME } from "../Palette";
import type { PaletteItem } from "../model/palette";
import type { Bundle, Selection } from "../model/types";
import { BraidEdge } from "./BraidEdge";
import { BraidNode } from "./BraidNode";

const nodeTypes: NodeTypes = { braid: BraidNode };
const edgeTypes: EdgeTypes = { braid: BraidEdge };
// Loops are drawn outside the nodes' box: leave room for them when fitting.
const FIT = { padding: 0.3, maxZoom: 1.2 };
const defaultEdgeOptions = { markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16, color: "#94a3b8" } };

export type CanvasProps = {
  bundle: Bundle;
  selection: Selection;
  onSelect: (s: Selection) => void;
  onMove: (positions: Record<string, { x: number; y: number }>) => void;
  onConnect: (from: string, to: string) => void;
  onDelete: (nodeRefs: string[], edgeIndexes: number[]) => void;
  onDrop: (item: PaletteItem, position: { x: number; y: number }) => void;
  /** Bumped by the page when the view should be fitted again (after a layout). */
  fitKey: number;
};

export function Canvas({ bundle, selection, onSelect, onMove, onConnect, onDelete, onDrop, fitKey }: CanvasProps) {
  const flow = useReactFlow<GraphNode, GraphEdge>();
  const graph = useMemo(() => bundleToGraph(bundle), [bundle]);
  const [nodes, setNodes] = useState<GraphNode[]>([]);

  // Re-derive from the bundle, keeping what React Flow measured so nodes do not flicker.
  useEffect(() => {
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return graph.nodes.map((n) => ({
        ...n,
        measured: old.get(n.id)?.measured,
        selected: selection?.kind === "node" && selection.ref === n.id,
      }));
    });
  }, [graph, selection]);

  const edges = useMemo(
    () => graph.edges.map((e) => ({ ...e, selected: selection?.kind === "edge" && selection.index === e.data?.index })),
    [graph, selection],
  );

  useEffect(() => {
    if (fitKey > 0) requestAnimationFrame(() => flow.fitView(FIT));
  }, [fitKey, flow]);

  const onNodesChange = useCallback(
    (changes: NodeChange<GraphNode>[]) => {
      // Removals come through onDelete and selection goes to the editor state (a click, or
      // Enter / Space on a focused node): the selected flag is derived from it.
      setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove" && c.type !== "select"), ns));
      const picked = changes.find((c) => c.type === "select" && c.selected);
      if (picked && picked.type === "select") onSelect({ kind: "node", ref: picked.id });
      const moved: Record<string, { x: number; y: number }> = {};
      for (const c of changes) {
        if (c.type === "position" && c.dragging === false && c.position) moved[c.id] = roundPos(c.position);
      }
      if (Object.keys(moved).length > 0) onMove(moved);
    },
    [onMove, onSelect],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange<GraphEdge>[]) => {
      const picked = changes.find((c) => c.type === "select" && c.selected);
      const index = picked?.type === "select" ? graph.edges.find((e) => e.id === picked.id)?.data?.index : undefined;
      if (index !== undefined) onSelect({ kind: "edge", index });
    },
    [graph, onSelect],
  );

  const handleDrop = useCallback(
    (event: DragEvent) => {
      const item = event.dataTransfer.getData(PALETTE_MIME) as PaletteItem;
      if (!item) return;
      event.preventDefault();
      const p = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      onDrop(item, roundPos({ x: p.x - NODE_WIDTH / 2, y: p.y - NODE_HEIGHT / 2 }));
    },
    [flow, onDrop],
  );

  return (
    <ReactFlow<GraphNode, GraphEdge>
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      edgeTypes={edgeTypes}
      defaultEdgeOptions={defaultEdgeOptions}
      onNodesChange={onNodesChange}
      onEdgesChange={onEdgesChange}
      onConnect={(c: Connection) => c.source && c.target && onConnect(c.source, c.target)}
      onNodeClick={(_, n) => onSelect({ kind: "node", ref: n.id })}
      onEdgeClick={(_, e) => e.data && onSelect({ kind: "edge", index: e.data.index })}
      onPaneClick={() => onSelect(null)}
      onDelete={({ nodes: ns, edges: es }) =>
        onDelete(
          ns.map((n) => n.id),
          es.flatMap((e) => (e.data ? [e.data.index] : [])),
        )
      }
      deleteKeyCode={["Delete", "Backspace"]}
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = "move";
      }}
      onDrop={handleDrop}
      fitView
      fitViewOptions={FIT}
      nodeDragThreshold={2}
    >
      <Background gap={16} color="#e2e8f0" />
      <Controls showInteractive={false} />
    </ReactFlow>
  );
}

function roundPos(p: { x: number; y: number }) {
  return { x: Math.round(p.x), y: Math.round(p.y) };
}
