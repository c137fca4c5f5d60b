// Where each save problem belongs: on a node (kind `node`, or an action that
// node uses), on an edge (kind `transition`, by ref or `from->to`), or in the
// workflow panel (kind `workflow`); prompt specs and model profiles go to the
// llm_call nodes using them; anything else only to the problems list.
import { resolveAction } from "./edit";
import type { Bundle, DefinitionProblem } from "./types";

export type PlacedProblems = {
  byNode: Map<string, DefinitionProblem[]>;
  byEdge: Map<number, DefinitionProblem[]>;
  /** The workflow's own (shown in the workflow panel). */
  workflow: DefinitionProblem[];
  /** Problems shown nowhere but in the list (every problem is in the list). */
  unplaced: DefinitionProblem[];
  all: DefinitionProblem[];
};

export const NO_PROBLEMS: PlacedProblems = { byNode: new Map(), byEdge: new Map(), workflow: [], unplaced: [], all: [] };

function push<K>(map: Map<K, DefinitionProblem[]>, key: K, p: DefinitionProblem) {
  const list = map.get(key);
  if (list) list.push(p);
  else map.set(key, [p]);
}

export function placeProblems(bundle: Bundle, problems: DefinitionProblem[]): PlacedProblems {
  const placed: PlacedProblems = { byNode: new Map(), byEdge: new Map(), workflow: [], unplaced: [], all: problems };
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
    } else if (p.kind === "prompt_spec" || p.kind === "model_profile") {
      // Edited in the panel of the llm_call nodes that use it.
      const field = p.kind === "prompt_spec" ? "prompt" : "model";
      for (const n of bundle.nodes) {
        const a = resolveAction(bundle, n);
        if (a?.kind === "llm_call" && a[field] === p.ref) {
          push(placed.byNode, n.ref, p);
          done = true;
        }
      }
    } else if (p.kind === "workflow") {
      placed.workflow.push(p);
      done = true;
    }
    if (!done) placed.unplaced.push(p);
  }
  return placed;
}
