// A bundle's graph as React Flow nodes and edges: one box per definition
// node, one edge per transition, with the facts the canvas shows as badges
// (fan-out, fan-in, loop). Shared by the editor and the run view.
import type { Edge, Node } from "@xyflow/react";
import type { Schemas } from "../api/client";

export type Bundle = Schemas["Bundle"];
export type DefNode = Schemas["Node"];
export type DefTransition = Schemas["Transition"];

/** What a canvas box carries: the definition node and its derived badges. */
export type GraphNodeData = {
  def: DefNode;
  /** The action's kind (`llm_call`, …) whether the action is inline or a ref. */
  kind: string;
  initial: boolean;
  /** Some outgoing transition spawns several tokens (spawn_count / foreach) or `fan_out: all` with several edges. */
  fanOut: boolean;
  /** The node waits for siblings (`fan_in`). */
  fanIn: boolean;
};

export type GraphEdgeData = {
  def: DefTransition;
  /** Index into `bundle.transitions`: the stable identity of an edge without a ref. */
  index: number;
};

export type GraphNode = Node<GraphNodeData>;
export type GraphEdge = Edge<GraphEdgeData>;

/** The action kind of a node, looking up ref'd actions in the bundle. */
export function actionKind(bundle: Bundle, node: DefNode): string {
  const action = node.action as unknown;
  if (typeof action === "string") {
    const found = bundle.actions?.find((a) => (a as { ref?: string }).ref === action) as { kind?: string } | undefined;
    return found?.kind ?? "unknown";
  }
  return (action as { kind?: string } | null)?.kind ?? "unknown";
}

/** The id of an edge: its ref, else `from->to#index` (refs are optional). */
export function edgeId(t: DefTransition, index: number): string {
  return t.ref ?? `${t.from}->${t.to}#${index}`;
}

export function bundleToGraph(bundle: Bundle): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const transitions = bundle.transitions ?? [];
  const layout = (bundle as { layout?: Record<string, { x: number; y: number }> | null }).layout ?? {};
  const nodes: GraphNode[] = bundle.nodes.map((def) => {
    const outgoing = transitions.filter((t) => t.from === def.ref);
    const spawns = outgoing.some((t) => t.spawn_count != null || t.foreach != null);
    return {
      id: def.ref,
      type: "braid",
      position: layout[def.ref] ?? { x: 0, y: 0 },
      data: {
        def,
        kind: actionKind(bundle, def),
        initial: def.ref === bundle.initial_node,
        fanOut: spawns || (def.fan_out === "all" && outgoing.length > 1),
        fanIn: def.fan_in != null,
      },
    };
  });
  const edges: GraphEdge[] = transitions.map((def, index) => ({
    id: edgeId(def, index),
    source: def.from,
    target: def.to,
    type: "braid",
    data: { def, index },
  }));
  return { nodes, edges };
}

/** Whether the bundle carries a position for every node (else lay it out). */
export function hasLayout(bundle: Bundle): boolean {
  const layout = (bundle as { layout?: Record<string, unknown> | null }).layout;
  return !!layout && bundle.nodes.every((n) => layout[n.ref] != null);
}
