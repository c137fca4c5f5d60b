// One look per action kind: icon, label and accent, shared by the palette,
// the canvas boxes and the node panel.
import { Bot, Braces, FileOutput, GitMerge, Workflow, type LucideIcon } from "lucide-react";
import type { PaletteItem } from "../model/palette";

export const KIND_LOOK: Record<PaletteItem | "unknown", { icon: LucideIcon; label: string; accent: string }> = {
  update_context: { icon: Braces, label: "update_context", accent: "text-slate-600 bg-slate-100" },
  llm_call: { icon: Bot, label: "llm_call", accent: "text-violet-700 bg-violet-50" },
  write_artifact: { icon: FileOutput, label: "write_artifact", accent: "text-teal-700 bg-teal-50" },
  workflow_call: { icon: Workflow, label: "workflow_call", accent: "text-sky-700 bg-sky-50" },
  join: { icon: GitMerge, label: "join", accent: "text-amber-700 bg-amber-50" },
  unknown: { icon: Braces, label: "unknown", accent: "text-slate-500 bg-slate-100" },
};

export function kindLook(kind: string) {
  return KIND_LOOK[kind as PaletteItem] ?? KIND_LOOK.unknown;
}
