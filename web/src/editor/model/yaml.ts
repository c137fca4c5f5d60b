// The bundle as YAML and back. YAML 1.2 core schema, as the server parses it
// (SPEC §2: only true/false are booleans), so what the pane shows is what the
// server reads.
import { parseDocument, stringify } from "yaml";
import type { Bundle } from "./types";

/** Top-level keys in the order SPEC §2 writes them; `layout` (editor metadata) last. */
const KEY_ORDER = [
  "name",
  "description",
  "input_schema",
  "output_schema",
  "initial_node",
  "nodes",
  "transitions",
  "output_mapping",
  "limits",
  "actions",
  "prompt_specs",
  "model_profiles",
  "artifact_types",
];

export function bundleToYaml(bundle: Bundle): string {
  const rank = (k: string) => (k === "layout" ? 1000 : KEY_ORDER.indexOf(k) === -1 ? 999 : KEY_ORDER.indexOf(k));
  const ordered = Object.fromEntries(Object.entries(bundle).sort(([a], [b]) => rank(a) - rank(b)));
  return stringify(ordered, { version: "1.2", lineWidth: 0, aliasDuplicateObjects: false });
}

export type YamlParse = { ok: true; bundle: Bundle } | { ok: false; error: string; line?: number };

/** Parses YAML into a bundle, checking just enough shape for the canvas; the server checks the rest at save. */
export function yamlToBundle(text: string): YamlParse {
  const doc = parseDocument(text, { version: "1.2", prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    return { ok: false, error: e.message.split("\n")[0], line: e.linePos?.[0].line };
  }
  const value: unknown = doc.toJS();
  const problem = shapeProblem(value);
  return problem ? { ok: false, error: problem } : { ok: true, bundle: value as Bundle };
}

function shapeProblem(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "the bundle must be a mapping";
  const b = v as Record<string, unknown>;
  if (typeof b.name !== "string") return "`name` must be a string";
  if (typeof b.initial_node !== "string") return "`initial_node` must be a string";
  if (!Array.isArray(b.nodes)) return "`nodes` must be a list";
  for (const [i, n] of b.nodes.entries()) {
    if (typeof n !== "object" || n === null || typeof (n as { ref?: unknown }).ref !== "string")
      return `nodes[${i}] needs a string \`ref\``;
  }
  if (b.transitions !== undefined && b.transitions !== null) {
    if (!Array.isArray(b.transitions)) return "`transitions` must be a list";
    for (const [i, t] of b.transitions.entries()) {
      const tt = t as { from?: unknown; to?: unknown } | null;
      if (typeof tt?.from !== "string" || typeof tt?.to !== "string")
        return `transitions[${i}] needs string \`from\` and \`to\``;
    }
  }
  if (b.layout != null && (typeof b.layout !== "object" || Array.isArray(b.layout))) return "`layout` must be a mapping";
  return undefined;
}
