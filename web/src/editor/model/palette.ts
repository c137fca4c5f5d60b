// What the palette offers: the four action kinds and the Join preset, each
// with the node it drops onto the canvas. A new llm_call gets the bundle's
// first prompt spec and model profile, or fresh ones when there are none, so
// the node is valid as soon as it lands.
import { draft, uniqueRef } from "./edit";
import type { Bundle, DefNode } from "./types";

export type PaletteItem = "update_context" | "llm_call" | "write_artifact" | "workflow_call" | "join";

export const PALETTE: { item: PaletteItem; label: string; hint: string }[] = [
  { item: "update_context", label: "Update context", hint: "Write state (CEL)" },
  { item: "llm_call", label: "LLM call", hint: "Prompt a model" },
  { item: "write_artifact", label: "Write artifact", hint: "Store an output" },
  { item: "workflow_call", label: "Call workflow", hint: "Run a sub-workflow" },
  { item: "join", label: "Join", hint: "Merge branches" },
];

const BASE_REF: Record<PaletteItem, string> = {
  update_context: "update",
  llm_call: "llm",
  write_artifact: "artifact",
  workflow_call: "call",
  join: "join",
};

/** The bundle with a new node for `item` (and any prompt spec / model profile it needs), plus the node's ref. */
export function createFromPalette(bundle: Bundle, item: PaletteItem): { bundle: Bundle; node: DefNode } {
  const next = draft(bundle);
  const ref = uniqueRef(BASE_REF[item], next.nodes.map((n) => n.ref));
  switch (item) {
    case "update_context":
      return { bundle: next, node: { ref, action: { kind: "update_context", updates: [] } } };
    case "join":
      return {
        bundle: next,
        node: {
          ref,
          fan_in: "all",
          merge: { source: "*", target: "state.results", strategy: "collect" },
          action: { kind: "update_context", updates: [] },
        },
      };
    case "llm_call": {
      let prompt = next.prompt_specs?.[0]?.ref;
      if (!prompt) {
        prompt = "prompt";
        next.prompt_specs = [{ ref: prompt, template: "Say hello." }];
      }
      let model = next.model_profiles?.[0]?.ref;
      if (!model) {
        model = "default";
        next.model_profiles = [{ ref: model, provider: "openai", model: "gpt-4o-mini" }];
      }
      return { bundle: next, node: { ref, action: { kind: "llm_call", prompt, model } } };
    }
    case "write_artifact":
      return { bundle: next, node: { ref, action: { kind: "write_artifact", artifact_type: "", name: ref } } };
    case "workflow_call":
      return { bundle: next, node: { ref, action: { kind: "workflow_call", workflow: "" } } };
  }
}
