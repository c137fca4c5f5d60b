// Saving a bundle as a new version (POST /api/workflow-defs) and reading the
// answer into what the editor shows: a version, "unchanged", or problems.
import { api } from "../../api/client";
import type { Bundle, DefinitionProblem } from "./types";

export type SaveOutcome =
  | { kind: "saved"; version: number; created: boolean; warnings: DefinitionProblem[] }
  | { kind: "invalid"; problems: DefinitionProblem[]; message: string }
  | { kind: "failed"; message: string };

export async function saveBundle(bundle: Bundle): Promise<SaveOutcome> {
  try {
    const { data, error, response } = await api.POST("/api/workflow-defs", { body: bundle });
    if (data) return { kind: "saved", version: data.version, created: data.created, warnings: data.warnings ?? [] };
    const body = error as { error?: { code?: string; message?: string; details?: { errors?: DefinitionProblem[] } } } | undefined;
    const message = body?.error?.message ?? `HTTP ${response.status}`;
    if (body?.error?.code === "INVALID_DEFINITION") return { kind: "invalid", problems: body.error.details?.errors ?? [], message };
    return { kind: "failed", message };
  } catch (e) {
    return { kind: "failed", message: (e as Error).message };
  }
}
