// The configuration of one action by kind. Works on an ActionBody whether it
// is inline in the node or shared in `actions` (the caller decides where the
// edit lands).
import type { ActionBody, ActionKind, Bundle } from "../model/types";
import { ACTION_KINDS } from "../model/types";
import { setOrDelete } from "../model/edit";
import { CheckField, SelectField, TextField } from "./fields";
import { LlmFields } from "./LlmFields";
import { MapRows, UpdateRows } from "./MappingRows";

/** A fresh action of `kind`, keeping the execution settings of the old one. */
export function actionOfKind(kind: ActionKind, old: ActionBody, bundle: Bundle): ActionBody {
  const execution = old.execution ? { execution: old.execution } : {};
  switch (kind) {
    case "update_context":
      return { kind, updates: [], ...execution };
    case "llm_call":
      return { kind, prompt: bundle.prompt_specs?.[0]?.ref ?? "", model: bundle.model_profiles?.[0]?.ref ?? "", ...execution };
    case "write_artifact":
      return { kind, artifact_type: "", name: "", ...execution };
    case "workflow_call":
      return { kind, workflow: "", ...execution };
  }
}

type Props = { action: ActionBody; bundle: Bundle; onChange: (change: (a: ActionBody) => void) => void; onBundle: (b: Bundle) => void };

export function ActionFields({ action, bundle, onChange, onBundle }: Props) {
  switch (action.kind) {
    case "update_context":
      return <UpdateRows value={action.updates} onChange={(v) => onChange((a) => a.kind === "update_context" && (a.updates = v))} />;
    case "llm_call":
      return (
        <LlmFields
          bundle={bundle}
          prompt={action.prompt}
          model={action.model}
          onBundle={onBundle}
          onPick={(p) =>
            onChange((a) => {
              if (a.kind !== "llm_call") return;
              if (p.prompt !== undefined) a.prompt = p.prompt;
              if (p.model !== undefined) a.model = p.model;
            })
          }
        />
      );
    case "write_artifact":
      return (
        <>
          <TextField label="artifact_type" field="action:artifact_type" mono value={action.artifact_type} onChange={(v) => onChange((a) => a.kind === "write_artifact" && (a.artifact_type = v))} />
          <TextField label="name" field="action:name" mono value={action.name} hint="Recorded as artifacts.<name>" onChange={(v) => onChange((a) => a.kind === "write_artifact" && (a.name = v))} />
          <MapRows label="content_mapping" field="action:content_mapping" keyPrefix="field" value={action.content_mapping} onChange={(v) => onChange((a) => a.kind === "write_artifact" && setOrDelete(a, "content_mapping", v))} />
        </>
      );
    case "workflow_call":
      return <WorkflowCallFields action={action} onChange={onChange} />;
  }
}

function WorkflowCallFields({ action, onChange }: { action: Extract<ActionBody, { kind: "workflow_call" }>; onChange: Props["onChange"] }) {
  const dynamic = typeof action.workflow === "object";
  const wf = typeof action.workflow === "object" ? action.workflow.from_context : action.workflow;
  const version = action.version;
  const versionText = version == null ? "" : typeof version === "object" ? version.from_context : String(version);
  const edit = (change: (a: Extract<ActionBody, { kind: "workflow_call" }>) => void) => onChange((a) => a.kind === "workflow_call" && change(a));
  return (
    <>
      <CheckField label="workflow from context (CEL)" checked={dynamic} onChange={(on) => edit((a) => (a.workflow = on ? { from_context: wf } : wf))} />
      <TextField label={dynamic ? "workflow (CEL)" : "workflow"} field="action:workflow" mono value={wf} onChange={(v) => edit((a) => (a.workflow = dynamic ? { from_context: v } : v))} />
      <TextField
        label="version"
        field="action:version"
        mono
        value={versionText}
        placeholder="latest at call time"
        hint="A number, or CEL for { from_context }"
        onChange={(v) => edit((a) => setOrDelete(a, "version", v === "" ? undefined : /^\d+$/.test(v) ? Number(v) : { from_context: v }))}
      />
      <SelectField<"propagate" | "catch"> label="on_failure" value={action.on_failure ?? ""} options={[{ value: "", label: "propagate (default)" }, "propagate", "catch"]} onChange={(v) => edit((a) => setOrDelete(a, "on_failure", v))} />
      <CheckField label="inherit_artifacts" checked={!!action.inherit_artifacts} onChange={(v) => edit((a) => setOrDelete(a, "inherit_artifacts", v || undefined))} />
    </>
  );
}

export const KIND_OPTIONS = ACTION_KINDS;
