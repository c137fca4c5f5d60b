// The side panel of the selected transition: ref, priority, condition, `on`,
// spawning (spawn_count / foreach) and loop (SPEC §2 transition fields).
import { useMemo } from "react";
import { Trash2 } from "lucide-react";
import { FieldProblemsContext, fieldProblems } from "./fieldProblems";
import { removeTransitions, setOrDelete, updateTransition } from "../model/edit";
import type { Bundle, DefinitionProblem, DefTransition } from "../model/types";
import { ConditionBuilder } from "./ConditionBuilder";
import { CheckField, NumberField, ProblemBox, Section, SelectField, TextField, smallButton } from "./fields";

type Props = { bundle: Bundle; index: number; problems?: DefinitionProblem[]; warnings?: DefinitionProblem[]; onBundle: (b: Bundle) => void; onDeleted: () => void };

export function EdgePanel({ bundle, index, problems, warnings, onBundle, onDeleted }: Props) {
  const t = bundle.transitions?.[index];
  const fields = useMemo(() => fieldProblems(problems), [problems]);
  if (!t) return null;
  const edit = (change: (t: DefTransition) => void) => onBundle(updateTransition(bundle, index, change));
  const spawn = t.spawn_count;
  return (
    <FieldProblemsContext.Provider value={fields}>
      <div data-testid="edge-panel">
        <ProblemBox problems={problems} />
        <ProblemBox problems={warnings} warning />
        <Section
          title={`Transition ${t.from} → ${t.to}`}
          aside={
            <button type="button" className={smallButton} aria-label="Delete transition" onClick={() => { onBundle(removeTransitions(bundle, [index])); onDeleted(); }}>
              <Trash2 size={12} /> Delete
            </button>
          }
        >
          <div className="grid grid-cols-2 gap-2">
            <SelectField label="from" field="transition:from" value={t.from} options={bundle.nodes.map((n) => n.ref)} onChange={(v) => v && edit((x) => (x.from = v))} />
            <SelectField label="to" field="transition:to" value={t.to} options={bundle.nodes.map((n) => n.ref)} onChange={(v) => v && edit((x) => (x.to = v))} />
          </div>
          <TextField label="ref" field="transition:ref" mono value={t.ref} placeholder={t.loop ? "required with loop" : "optional"} onChange={(v) => edit((x) => setOrDelete(x, "ref", v))} />
          <div className="grid grid-cols-2 gap-2">
            <NumberField label="priority" field="transition:priority" value={t.priority} hint="Lower first; default 0" onChange={(v) => edit((x) => setOrDelete(x, "priority", v))} />
            <SelectField<"success" | "failure" | "always"> label="on" value={t.on ?? ""} options={[{ value: "", label: "success (default)" }, "success", "failure", "always"]} onChange={(v) => edit((x) => setOrDelete(x, "on", v))} />
          </div>
          <ConditionBuilder value={t.condition} onChange={(v) => edit((x) => setOrDelete(x, "condition", v))} />
        </Section>
        <Section title="Fan-out">
          <TextField
            label="spawn_count"
            field="transition:spawn_count"
            mono
            value={spawn == null ? "" : String(spawn)}
            placeholder="1"
            hint="A number, or CEL giving one"
            onChange={(v) => edit((x) => setOrDelete(x, "spawn_count", v === "" ? undefined : /^\d+$/.test(v) ? Number(v) : v))}
          />
          <CheckField
            label="foreach (one branch per list element)"
            checked={t.foreach != null}
            onChange={(on) => edit((x) => setOrDelete(x, "foreach", on ? { collection: "state.items", item_var: "item" } : undefined))}
          />
          {t.foreach && (
            <div className="grid grid-cols-2 gap-2">
              <TextField label="collection" field="transition:foreach.collection" mono value={t.foreach.collection} onChange={(v) => edit((x) => x.foreach && (x.foreach.collection = v))} />
              <TextField label="item_var" mono value={t.foreach.item_var} onChange={(v) => edit((x) => x.foreach && setOrDelete(x.foreach, "item_var", v))} />
            </div>
          )}
        </Section>
        <Section title="Loop">
          <CheckField
            label="loop (may be taken again along a lineage)"
            checked={t.loop != null}
            onChange={(on) =>
              edit((x) => {
                setOrDelete(x, "loop", on ? { max_iterations: 3 } : undefined);
                if (on && !x.ref) x.ref = `${x.from}_to_${x.to}`;
              })
            }
          />
          {t.loop && <NumberField label="max_iterations" field="transition:loop.max_iterations" min={1} value={t.loop.max_iterations} onChange={(v) => edit((x) => x.loop && (x.loop.max_iterations = v ?? 1))} />}
        </Section>
      </div>
    </FieldProblemsContext.Provider>
  );
}
