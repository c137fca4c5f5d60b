// Workflow-level settings, shown when nothing is selected: name,
// description, initial node, schemas, output_mapping and limits.
import { useMemo } from "react";
import { setOrDelete } from "../model/edit";
import type { Bundle, DefinitionProblem, Limits } from "../model/types";
import { FieldProblemsContext, fieldProblems } from "./fieldProblems";
import { MapRows } from "./MappingRows";
import { JsonField, NumberField, ProblemBox, Section, SelectField, TextArea, TextField } from "./fields";

type Props = { bundle: Bundle; problems: DefinitionProblem[]; warnings: DefinitionProblem[]; onBundle: (b: Bundle) => void };

export function WorkflowPanel({ bundle, problems, warnings, onBundle }: Props) {
  const fields = useMemo(() => fieldProblems(problems), [problems]);
  const edit = (change: (b: Bundle) => void) => {
    const next = structuredClone(bundle);
    change(next);
    onBundle(next);
  };
  const limits = bundle.limits ?? {};
  const setLimit = (k: keyof Limits, v: number | undefined) =>
    edit((b) => {
      const l: Limits = { ...(b.limits ?? {}) };
      setOrDelete(l, k, v);
      setOrDelete(b, "limits", Object.keys(l).length > 0 ? l : undefined);
    });
  return (
    <FieldProblemsContext.Provider value={fields}>
      <div data-testid="workflow-panel">
        <ProblemBox problems={problems} />
        <ProblemBox problems={warnings} warning />
        <p className="px-3 pt-3 text-[12px] text-slate-500">Select a node or a transition to edit it. These are the workflow's own settings.</p>
        <Section title="Workflow">
          <TextField label="name" field="workflow:name" mono value={bundle.name} hint="Saving under another name creates another workflow" onChange={(v) => edit((b) => (b.name = v))} />
          <TextArea label="description" value={bundle.description} rows={2} onChange={(v) => edit((b) => setOrDelete(b, "description", v))} />
          <SelectField label="initial_node" field="workflow:initial_node" value={bundle.initial_node} options={bundle.nodes.map((n) => n.ref)} onChange={(v) => v && edit((b) => (b.initial_node = v))} />
        </Section>
        <Section title="Input and output">
          <JsonField label="input_schema" field="workflow:input_schema" rows={5} value={bundle.input_schema} hint="JSON Schema of the run input; the Run form is generated from it" onChange={(v) => edit((b) => setOrDelete(b, "input_schema", v))} />
          <JsonField label="output_schema" field="workflow:output_schema" rows={3} value={bundle.output_schema} onChange={(v) => edit((b) => setOrDelete(b, "output_schema", v))} />
          <MapRows label="output_mapping" field="workflow:output_mapping" keyPrefix="field" value={bundle.output_mapping} onChange={(v) => edit((b) => setOrDelete(b, "output_mapping", v))} />
        </Section>
        <Section title="Limits">
          <div className="grid grid-cols-2 gap-2">
            <NumberField label="timeout_ms" field="workflow:limits.timeout_ms" min={1} value={limits.timeout_ms} onChange={(v) => setLimit("timeout_ms", v)} />
            <NumberField label="max_run_tokens" field="workflow:limits.max_run_tokens" min={1} value={limits.max_run_tokens} onChange={(v) => setLimit("max_run_tokens", v)} />
          </div>
        </Section>
      </div>
    </FieldProblemsContext.Provider>
  );
}
