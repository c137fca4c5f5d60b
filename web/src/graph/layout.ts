// Automatic layout of a workflow graph with dagre (top to bottom, ranks by
// transitions). Loops' back edges are left to dagre's cycle handling.
import dagre from "@dagrejs/dagre";
import type { Edge, Node } from "@xyflow/react";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 72;

/** Returns the nodes with positions from dagre; edges only shape the ranks. */
export function layoutGraph<N extends Node>(nodes: N[], edges: Edge[]): N[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 48, ranksep: 72, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) {
    g.setNode(n.id, {
      width: n.measured?.width ?? NODE_WIDTH,
      height: n.measured?.height ?? NODE_HEIGHT,
    });
  }
  for (const e of edges) {
    if (e.source !== e.target) g.setEdge(e.source, e.target);
  }
  dagre.layout(g);
  return nodes.map((n) => {
    const p = g.node(n.id);
    const width = n.measured?.width ?? NODE_WIDTH;
    const height = n.measured?.height ?? NODE_HEIGHT;
    return { ...n, position: { x: Math.round(p.x - width / 2), y: Math.round(p.y - height / 2) } };
  });
}
