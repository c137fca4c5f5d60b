// Node positions (`bundle.layout`): dagre for a whole graph, and a place
// for nodes that arrive without one (typed into the YAML pane).
import { bundleToGraph } from "../../graph/bundle";
import { NODE_HEIGHT, layoutGraph } from "../../graph/layout";
import type { Bundle, Layout } from "./types";

/** Positions for every node from dagre, as a `layout` map. */
export function autoLayout(bundle: Bundle): Layout {
  const { nodes, edges } = bundleToGraph(bundle);
  return Object.fromEntries(layoutGraph(nodes, edges).map((n) => [n.id, n.position]));
}

/**
 * The bundle with a position for every node: laid out from scratch when it
 * has none at all, otherwise the unplaced nodes go below the placed ones
 * (so a node typed in YAML never moves the ones the user arranged).
 */
export function completeLayout(bundle: Bundle): Bundle {
  const layout = bundle.layout ?? {};
  const placed = bundle.nodes.filter((n) => layout[n.ref]);
  if (placed.length === bundle.nodes.length) return bundle;
  if (placed.length === 0) return { ...bundle, layout: autoLayout(bundle) };
  const x = Math.min(...placed.map((n) => layout[n.ref].x));
  let y = Math.max(...placed.map((n) => layout[n.ref].y));
  const next: Layout = {};
  for (const n of bundle.nodes) {
    if (layout[n.ref]) next[n.ref] = layout[n.ref];
    else next[n.ref] = { x, y: (y += NODE_HEIGHT + 48) };
  }
  return { ...bundle, layout: next };
}
