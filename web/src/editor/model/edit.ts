// Pure edits of a bundle. Each takes the bundle and returns a new one (the
// editor state is immutable); references by ref (transitions, initial_node,
// joins, layout) are kept consistent so the canvas never shows a dangling edge.
import type { ActionBody, Bundle, DefNode, DefTransition, Layout } from "./types";

/** A copy to mutate: bundles are small, and a deep copy keeps edits local. */
export function draft(bundle: Bundle): Bundle {
  return structuredClone(bundle);
}

/** A fresh one-node bundle for a new workflow (saved only on Save). */
export function newBundle(name: string): Bundle {
  return {
    name,
    initial_node: "start",
    nodes: [{ ref: "start", action: { kind: "update_context", updates: [] } }],
    transitions: [],
    layout: { start: { x: 0, y: 0 } },
  };
}

/** The inline action of a node, or the bundle action it names. */
export function resolveAction(bundle: Bundle, node: DefNode): ActionBody | undefined {
  if (typeof node.action === "string") return bundle.actions?.find((a) => a.ref === node.action);
  return node.action;
}

/** `base`, `base_2`, `base_3`… : the first ref not in `taken`. */
export function uniqueRef(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}_${i}`)) return `${base}_${i}`;
}

export function addNode(bundle: Bundle, node: DefNode, position: { x: number; y: number }): Bundle {
  const next = draft(bundle);
  next.nodes.push(node);
  next.layout = { ...(next.layout ?? {}), [node.ref]: position };
  if (!next.nodes.some((n) => n.ref === next.initial_node)) next.initial_node = node.ref;
  return next;
}

export function removeNodes(bundle: Bundle, refs: string[]): Bundle {
  const gone = new Set(refs);
  const next = draft(bundle);
  next.nodes = next.nodes.filter((n) => !gone.has(n.ref));
  next.transitions = (next.transitions ?? []).filter((t) => !gone.has(t.from) && !gone.has(t.to));
  for (const n of next.nodes) if (n.joins && gone.has(n.joins)) delete n.joins;
  if (next.layout) for (const r of refs) delete next.layout[r];
  // A workflow always starts somewhere: fall back to the first node left.
  if (gone.has(next.initial_node)) next.initial_node = next.nodes[0]?.ref ?? "";
  return next;
}

export function updateNode(bundle: Bundle, ref: string, change: (n: DefNode) => void): Bundle {
  const next = draft(bundle);
  const node = next.nodes.find((n) => n.ref === ref);
  if (node) change(node);
  return next;
}

/** Renames a node and every reference to it (edges, initial node, joins, layout, inline action ref). */
export function renameNode(bundle: Bundle, from: string, to: string): Bundle {
  if (from === to || bundle.nodes.some((n) => n.ref === to)) return bundle;
  const next = draft(bundle);
  for (const n of next.nodes) {
    if (n.ref === from) n.ref = to;
    if (n.joins === from) n.joins = to;
  }
  for (const t of next.transitions ?? []) {
    if (t.from === from) t.from = to;
    if (t.to === from) t.to = to;
  }
  if (next.initial_node === from) next.initial_node = to;
  if (next.layout?.[from]) {
    next.layout[to] = next.layout[from];
    delete next.layout[from];
  }
  return next;
}

export function addTransition(bundle: Bundle, t: DefTransition): Bundle {
  const next = draft(bundle);
  next.transitions = [...(next.transitions ?? []), t];
  const target = next.nodes.find((n) => n.ref === t.to);
  // A join reached for the first time closes the nearest fan-out upstream.
  if (target?.fan_in != null && !target.joins) {
    const origin = upstreamFanOut(next, t.from);
    if (origin) target.joins = origin;
  }
  return next;
}

export function removeTransitions(bundle: Bundle, indexes: number[]): Bundle {
  const gone = new Set(indexes);
  const next = draft(bundle);
  next.transitions = (next.transitions ?? []).filter((_, i) => !gone.has(i));
  return next;
}

export function updateTransition(bundle: Bundle, index: number, change: (t: DefTransition) => void): Bundle {
  const next = draft(bundle);
  const t = next.transitions?.[index];
  if (t) change(t);
  return next;
}

export function setLayout(bundle: Bundle, layout: Layout): Bundle {
  return { ...bundle, layout };
}

/** Whether a transition spawns a sibling set by itself (spawn_count / foreach). */
export function spawns(t: DefTransition): boolean {
  return t.spawn_count != null || t.foreach != null;
}

/** The closest node at or above `ref` that fans out (breadth first over incoming edges). */
export function upstreamFanOut(bundle: Bundle, ref: string): string | undefined {
  const transitions = bundle.transitions ?? [];
  const seen = new Set<string>();
  const queue = [ref];
  while (queue.length > 0) {
    const at = queue.shift()!;
    if (seen.has(at)) continue;
    seen.add(at);
    const out = transitions.filter((t) => t.from === at);
    const node = bundle.nodes.find((n) => n.ref === at);
    if (out.some(spawns) || (node?.fan_out === "all" && out.length > 1)) return at;
    for (const t of transitions) if (t.to === at) queue.push(t.from);
  }
  return undefined;
}

/** Sets `key` on `obj`, or deletes it when the value is empty, so cleared fields leave no trace in the bundle. */
export function setOrDelete<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined | null | ""): void {
  if (value === undefined || value === null || value === "") delete obj[key];
  else obj[key] = value as T[K];
}
