// The side panel of the selected node: identity, action and its
// configuration, mappings, join settings, execution and outgoing transitions
// (which can also be added here, for keyboard users).
import { useMemo, useState } from "react";
import { ArrowRight, Play, Plus, Trash2 } from "lucide-react";
import { addTransition, draft, removeNodes, renameNode, resolveAction, setOrDelete, updateNode } from "../model/edit";
import { ACTION_KINDS, type ActionBody, type ActionKind, type Bundle, type DefinitionProblem, type Selection } from "../model/types";
import { ActionFields, actionOfKind } from "./ActionFields";
import { ExecutionFields } from "./ExecutionFields";
import { FanInFields } from "./FanInFields";
import { MapRows } from "./MappingRows";
import { FieldProblemsContext, fieldProblems } from "./fieldProblems";
import { CommitField, ProblemBox, Section, SelectField, TextField, inputClass, smallButton } from "./fields";

type Props = {
  bundle: Bundle;
  nodeRef: string;
  problems?: DefinitionProblem[]; warnings?: DefinitionProblem[];
  onBundle: (b: Bundle) => void;
  onSelect: (s: Selection) => void;
};

export function NodePanel({ bundle, nodeRef, problems, warnings, onBundle, onSelect }: Props) {
  const node = bundle.nodes.find((n) => n.ref === nodeRef);
  const [target, setTarget] = useState("");
  const fields = useMemo(() => fieldProblems(problems), [problems]);
  if (!node) return null;
  const edit = (change: Parameters<typeof updateNode>[2]) => onBundle(updateNode(bundle, nodeRef, change));
  const shared = typeof node.action === "string" ? node.action : undefined;
  const action = resolveAction(bundle, node);

  // Edits land in the inline action, or in the shared action the node names.
  const editAction = (change: (a: ActionBody) => void) => {
    const next = draft(bundle);
    const n = next.nodes.find((x) => x.ref === nodeRef)!;
    const target = typeof n.action === "string" ? next.actions?.find((a) => a.ref === n.action) : n.action;
    if (target) change(target);
    onBundle(next);
  };
  const setKind = (kind: ActionKind) => edit((n) => (n.action = actionOfKind(kind, action ?? { kind: "update_context" }, bundle)));
  const outgoing = (bundle.transitions ?? []).map((t, index) => ({ t, index })).filter(({ t }) => t.from === nodeRef);

  return (
    <FieldProblemsContext.Provider value={fields}>
      <div data-testid="node-panel">
        <ProblemBox problems={problems} />
        <ProblemBox problems={warnings} warning />
        <Section
          title="Node"
          aside={
            <button type="button" className={smallButton} onClick={() => onBundle(removeNodes(bundle, [nodeRef]))} aria-label="Delete node">
              <Trash2 size={12} /> Delete
            </button>
          }
        >
          <CommitField
            label="ref"
            field="node:ref"
            mono
            value={node.ref}
            onCommit={(to) => {
              const next = renameNode(bundle, nodeRef, to);
              if (next !== bundle) {
                onBundle(next);
                onSelect({ kind: "node", ref: to });
              }
            }}
          />
          <TextField label="name" field="node:name" value={node.name} placeholder="Display name" onChange={(v) => edit((n) => setOrDelete(n, "name", v))} />
          {bundle.initial_node === nodeRef ? (
            <p className="flex items-center gap-1 text-[12px] text-blue-700">
              <Play size={12} /> The workflow starts here.
            </p>
          ) : (
            <button type="button" className={smallButton} onClick={() => onBundle({ ...bundle, initial_node: nodeRef })}>
              <Play size={12} /> Set as initial node
            </button>
          )}
        </Section>
        <Section title="Action">
          {shared !== undefined ? (
            <SelectField
              label="shared action"
              value={shared}
              hint="Edits below change every node using this action"
              options={(bundle.actions ?? []).map((a) => a.ref)}
              onChange={(v) => v && edit((n) => (n.action = v))}
            />
          ) : null}
          {action ? (
            <>
              <SelectField<ActionKind> label="kind" field="action:kind" value={action.kind} options={ACTION_KINDS} onChange={(v) => v && setKind(v)} />
              <ActionFields action={action} bundle={bundle} onChange={editAction} onBundle={onBundle} />
            </>
          ) : (
            <p className="text-[12px] text-red-700">The action `{shared}` is not defined in this bundle.</p>
          )}
        </Section>
        <Section title="Mappings">
          <MapRows label="input_mapping" field="node:input_mapping" keyPrefix="field" value={node.input_mapping} onChange={(v) => edit((n) => setOrDelete(n, "input_mapping", v))} />
          <MapRows label="output_mapping" field="node:output_mapping" keyPrefix="state.out" value={node.output_mapping} onChange={(v) => edit((n) => setOrDelete(n, "output_mapping", v))} />
        </Section>
        <Section title="Fan-out and fan-in">
          <SelectField<"first_match" | "all">
            label="fan_out"
            field="node:fan_out"
            value={node.fan_out ?? ""}
            options={[{ value: "", label: "first_match (default)" }, "first_match", "all"]}
            onChange={(v) => edit((n) => setOrDelete(n, "fan_out", v))}
          />
          <FanInFields bundle={bundle} node={node} onChange={edit} />
        </Section>
        <Section title="Execution">
          <p className="text-[11px] text-slate-500">This node's overrides: each field set here replaces the action's.</p>
          <ExecutionFields value={node.execution} onChange={(v) => edit((n) => setOrDelete(n, "execution", v))} />
          {action && (
            <details className="rounded border border-slate-200 bg-slate-50 px-2 py-1.5" open={!!action.execution}>
              <summary className="cursor-pointer text-[12px] font-medium text-slate-700">The action's own{shared ? ` (shared: ${shared})` : ""}</summary>
              <div className="pt-2">
                <ExecutionFields value={action.execution} onChange={(v) => editAction((a) => setOrDelete(a, "execution", v))} />
              </div>
            </details>
          )}
        </Section>
        <Section title="Transitions out">
          {outgoing.length === 0 && <p className="text-[11px] text-slate-400">None: the node is terminal.</p>}
          {outgoing.map(({ t, index }) => (
            <button
              key={index}
              type="button"
              className="flex items-center gap-1.5 rounded px-1 py-0.5 text-left font-mono text-[12px] text-slate-700 hover:bg-slate-100"
              onClick={() => onSelect({ kind: "edge", index })}
            >
              <ArrowRight size={12} /> {t.to}
              {t.ref && <span className="text-slate-400">({t.ref})</span>}
            </button>
          ))}
          <div className="flex gap-1">
            <select className={inputClass} aria-label="Add transition to" value={target} onChange={(e) => setTarget(e.target.value)}>
              <option value="">— add transition to —</option>
              {bundle.nodes.map((n) => (
                <option key={n.ref} value={n.ref}>
                  {n.ref}
                </option>
              ))}
            </select>
            <button
              type="button"
              className={smallButton}
              disabled={!target}
              onClick={() => {
                onBundle(addTransition(bundle, { from: nodeRef, to: target }));
                setTarget("");
              }}
            >
              <Plus size={12} /> Add
            </button>
          </div>
        </Section>
      </div>
    </FieldProblemsContext.Provider>
  );
}
