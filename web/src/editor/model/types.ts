// The definition types the editor works on, all taken from the generated
// OpenAPI types so a field the server renames breaks the build here.
import type { Schemas } from "../../api/client";

export type Bundle = Schemas["Bundle"];
export type DefNode = Schemas["Node"];
export type DefTransition = Schemas["Transition"];
export type ActionBody = Schemas["ActionBody"];
export type ActionDef = Schemas["ActionDef"];
export type ActionKind = ActionBody["kind"];
export type PromptSpec = Schemas["PromptSpec"];
export type ModelProfile = Schemas["ModelProfile"];
export type Structured = Schemas["Structured"];
export type Condition = Schemas["Condition"];
export type Merge = Schemas["Merge"];
export type MergeStrategy = Schemas["MergeStrategy"];
export type FanIn = Schemas["FanIn"];
export type Execution = Schemas["Execution"];
export type RetryPolicy = Schemas["RetryPolicy"];
export type Limits = Schemas["Limits"];
export type DefinitionProblem = Schemas["DefinitionProblem"];
export type Update = Schemas["Update"];

/** `layout: { <node ref>: { x, y } }` (SPEC §2): the editor's node positions. */
export type Layout = NonNullable<Bundle["layout"]>;

export const ACTION_KINDS: ActionKind[] = ["update_context", "llm_call", "write_artifact", "workflow_call"];
export const MERGE_STRATEGIES: MergeStrategy[] = ["append", "collect", "merge_object", "keyed_by_branch", "last_wins"];

/** What the editor has selected: one node, one transition (by index) or nothing. */
export type Selection = { kind: "node"; ref: string } | { kind: "edge"; index: number } | null;
