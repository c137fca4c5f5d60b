// Where each save problem belongs: on a node (kind `node`, or an action that
// node uses), on an edge (kind `transition`, by ref or `from->to`), or in the
// problems list (everything else: workflow, prompt specs, model profiles…).
import type { Bundle, DefinitionProblem } from "./types";

export type PlacedProblems = {
  byNode: Map<string, DefinitionProblem[]>;
  byEdge: Map<number, DefinitionProblem[]>;
  /** Problems not shown on the canvas (all of them are also in the list). */
  unplaced: DefinitionProblem[];
  all: DefinitionProblem[];
};

export const NO_PROBLEMS: PlacedProblems = { byNode: new Map(), byEdge: new Map(), unplaced: [], all: [] };

function push<K>(map: Map<K, DefinitionProblem[]>, key: K, p: DefinitionProblem) {
  const list = map.get(key);
  if (list) list.push(p);
  else map.set(key, [p]);
}

export function placeProblems(bundle: Bundle, problems: DefinitionProblem[]): PlacedProblems {
  const placed: PlacedProblems = { byNode: new Map(), byEdge: new Map(), unplaced: [], all: problems };
  const refs = new Set(bundle.nodes.map((n) => n.ref));
  const transitions = bundle.transitions ?? [];
  for (const p of problems) {
    let done = false;
    if (p.kind === "node" && refs.has(p.ref)) {
      push(placed.byNode, p.ref, p);
      done = true;
    } else if (p.kind === "transition") {
      transitions.forEach((t, i) => {
        if (t.ref === p.ref || `${t.from}->${t.to}` === p.ref) {
          push(placed.byEdge, i, p);
          done = true;
        }
      });
    } else if (p.kind === "action") {
      // An inline action's ref is `<node>.action`; a shared action is shown on every node using it.
      const inline = p.ref.endsWith(".action") ? p.ref.slice(0, -".action".length) : undefined;
      for (const n of bundle.nodes) {
        if (n.ref === inline || n.action === p.ref) {
          push(placed.byNode, n.ref, p);
          done = true;
        }
      }
    }
    if (!done) placed.unplaced.push(p);
  }
  return placed;
}
