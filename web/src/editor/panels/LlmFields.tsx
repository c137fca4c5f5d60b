// llm_call configuration: pickers for the prompt spec and the model profile
// it names, and editors for those bundle-level objects (editing one changes
// every node that uses it, which the picker's caption says).
import { Plus } from "lucide-react";
import { draft, setOrDelete, uniqueRef } from "../model/edit";
import type { Bundle, ModelProfile, PromptSpec } from "../model/types";
import { CommitField, JsonField, NumberField, SelectField, TextArea, TextField, smallButton } from "./fields";
import { LimitFields } from "./LimitFields";

const PROVIDERS = ["openai", "openai_compatible", "anthropic", "scripted"] as const;

type Props = {
  bundle: Bundle;
  prompt: string;
  model: string;
  onPick: (change: { prompt?: string; model?: string }) => void;
  onBundle: (b: Bundle) => void;
};

export function LlmFields({ bundle, prompt, model, onPick, onBundle }: Props) {
  const specs = bundle.prompt_specs ?? [];
  const profiles = bundle.model_profiles ?? [];
  const spec = specs.find((s) => s.ref === prompt);
  const profile = profiles.find((p) => p.ref === model);

  const editSpec = (change: (s: PromptSpec) => void) => {
    const next = draft(bundle);
    const s = next.prompt_specs?.find((x) => x.ref === prompt);
    if (s) change(s);
    onBundle(next);
  };
  const editProfile = (change: (p: ModelProfile) => void) => {
    const next = draft(bundle);
    const p = next.model_profiles?.find((x) => x.ref === model);
    if (p) change(p);
    onBundle(next);
  };
  const renameSpec = (to: string) => {
    if (specs.some((s) => s.ref === to)) return;
    const next = draft(bundle);
    for (const s of next.prompt_specs ?? []) if (s.ref === prompt) s.ref = to;
    renameLlmRefs(next, "prompt", prompt, to);
    onBundle(next);
  };
  const renameProfile = (to: string) => {
    if (profiles.some((p) => p.ref === to)) return;
    const next = draft(bundle);
    for (const p of next.model_profiles ?? []) if (p.ref === model) p.ref = to;
    renameLlmRefs(next, "model", model, to);
    onBundle(next);
  };
  const addSpec = () => {
    const next = draft(bundle);
    const ref = uniqueRef("prompt", specs.map((s) => s.ref));
    next.prompt_specs = [...specs, { ref, template: "" }];
    onBundle(next);
    onPick({ prompt: ref });
  };
  const addProfile = () => {
    const next = draft(bundle);
    const ref = uniqueRef("model", profiles.map((p) => p.ref));
    next.model_profiles = [...profiles, { ref, provider: "openai_compatible", model: "" }];
    onBundle(next);
    onPick({ model: ref });
  };

  return (
    <>
      <div className="flex items-end gap-1">
        <div className="flex-1">
          <SelectField label="prompt" field="action:prompt" value={prompt} options={[{ value: "", label: "— pick a prompt spec —" }, ...specs.map((s) => s.ref)]} onChange={(v) => onPick({ prompt: v })} />
        </div>
        <button type="button" className={smallButton} onClick={addSpec} aria-label="New prompt spec">
          <Plus size={12} /> New
        </button>
      </div>
      {spec && (
        <div className="flex flex-col gap-2 rounded border border-slate-200 bg-slate-50 p-2" data-testid="prompt-spec-editor">
          <CommitField label="prompt spec ref" value={spec.ref} mono onCommit={renameSpec} />
          <TextArea label="system" field="prompt_spec:system" value={spec.system} rows={2} onChange={(v) => editSpec((s) => setOrDelete(s, "system", v))} />
          <TextArea label="template" field="prompt_spec:template" value={spec.template} rows={3} mono hint="Handlebars: {{state.x}}, {{_branch.index}}" onChange={(v) => editSpec((s) => (s.template = v))} />
          <JsonField label="produces (JSON Schema)" field="prompt_spec:produces" value={spec.produces} onChange={(v) => editSpec((s) => setOrDelete(s, "produces", v))} />
        </div>
      )}
      <div className="flex items-end gap-1">
        <div className="flex-1">
          <SelectField label="model" field="action:model" value={model} options={[{ value: "", label: "— pick a model profile —" }, ...profiles.map((p) => p.ref)]} onChange={(v) => onPick({ model: v })} />
        </div>
        <button type="button" className={smallButton} onClick={addProfile} aria-label="New model profile">
          <Plus size={12} /> New
        </button>
      </div>
      {profile && (
        <div className="flex flex-col gap-2 rounded border border-slate-200 bg-slate-50 p-2" data-testid="model-profile-editor">
          <CommitField label="model profile ref" value={profile.ref} mono onCommit={renameProfile} />
          <SelectField label="provider" field="model_profile:provider" value={profile.provider as (typeof PROVIDERS)[number]} options={PROVIDERS} onChange={(v) => editProfile((p) => (p.provider = v))} />
          <TextField label="model name" field="model_profile:model" mono value={profile.model} onChange={(v) => editProfile((p) => (p.model = v))} />
          <TextField label="base_url" field="model_profile:base_url" mono value={profile.base_url} placeholder="provider default" onChange={(v) => editProfile((p) => setOrDelete(p, "base_url", v))} />
          <TextField label="api_key_env" mono value={profile.api_key_env} placeholder="OPENAI_API_KEY" onChange={(v) => editProfile((p) => setOrDelete(p, "api_key_env", v))} />
          <JsonField label="parameters" field="model_profile:parameters" rows={2} value={profile.parameters} hint="temperature, max_tokens, top_p, stop" onChange={(v) => editProfile((p) => setOrDelete(p, "parameters", v as ModelProfile["parameters"]))} />
          <LimitFields profile={profile} onEdit={editProfile} />
          <div className="grid grid-cols-2 gap-2">
            <NumberField label="$ / 1k input" value={profile.cost_per_1k_input_tokens} onChange={(v) => editProfile((p) => setOrDelete(p, "cost_per_1k_input_tokens", v))} />
            <NumberField label="$ / 1k output" value={profile.cost_per_1k_output_tokens} onChange={(v) => editProfile((p) => setOrDelete(p, "cost_per_1k_output_tokens", v))} />
          </div>
        </div>
      )}
    </>
  );
}

/** Points every llm_call (inline or shared) that named `from` at `to`. */
function renameLlmRefs(bundle: Bundle, field: "prompt" | "model", from: string, to: string) {
  const bodies = [...bundle.nodes.map((n) => n.action), ...(bundle.actions ?? [])];
  for (const a of bodies) {
    if (typeof a !== "string" && a.kind === "llm_call" && a[field] === from) a[field] = to;
  }
}
