// What the fork dialog shows of a node: its action (editable when it is a
// shared action, which a fork's `changes.actions` can replace; an inline one
// is shown as it is) and, for an llm_call, the prompt spec and the model
// profile it names.
import { resolveAction } from "../../editor/model/edit";
import type { Bundle } from "../../editor/model/types";
import type { ForkChanges } from "../../api/fork";

export type Piece = {
  key: "action" | "prompt" | "model";
  /** The `changes` list it goes to when edited. */
  kind: keyof ForkChanges;
  label: string;
  ref: string;
  note: string;
  original: object;
  editable: boolean;
};

export function forkPieces(bundle: Bundle, nodeRef: string): Piece[] {
  const node = bundle.nodes.find((n) => n.ref === nodeRef);
  if (!node) return [];
  const pieces: Piece[] = [];
  const action = resolveAction(bundle, node);
  if (typeof node.action === "string") {
    if (action) {
      pieces.push({ key: "action", kind: "actions", label: "Action", ref: node.action, note: `shared ${action.kind}`, original: action, editable: true });
    }
  } else if (action) {
    pieces.push({ key: "action", kind: "actions", label: "Action", ref: `${nodeRef}.action`, note: `inline ${action.kind}, not editable here`, original: action, editable: false });
  }
  if (action?.kind === "llm_call") {
    const spec = bundle.prompt_specs?.find((s) => s.ref === action.prompt);
    if (spec) pieces.push({ key: "prompt", kind: "prompt_specs", label: "Prompt spec", ref: spec.ref, note: "", original: spec, editable: true });
    const profile = bundle.model_profiles?.find((p) => p.ref === action.model);
    if (profile) pieces.push({ key: "model", kind: "model_profiles", label: "Model profile", ref: profile.ref, note: "", original: profile, editable: true });
  }
  return pieces;
}
