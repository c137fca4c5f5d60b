// A transition's condition: none, CEL text, or a structured condition
// (SPEC §2: comparison, exists, in_set, array_length, and, or) that the
// server compiles to CEL.
import { Plus, X } from "lucide-react";
import type { Condition, Structured } from "../model/types";
import clsx from "clsx";
import { useFieldProblem } from "./fieldProblems";
import { CheckField, SelectField, invalidClass, monoInputClass, smallButton } from "./fields";

const OPS = [">", "<", "==", "!=", ">=", "<="] as const;
type StructuredType = Structured["type"];
const TYPES: StructuredType[] = ["comparison", "exists", "in_set", "array_length", "and", "or"];

function fresh(type: StructuredType): Structured {
  switch (type) {
    case "comparison":
      return { type, field: "state.x", op: "==", value: "" };
    case "exists":
      return { type, field: "state.x" };
    case "in_set":
      return { type, field: "state.x", values: [] };
    case "array_length":
      return { type, field: "state.items", op: ">", value: 0 };
    case "and":
    case "or":
      return { type, conditions: [{ type: "exists", field: "state.x" }] };
  }
}

/** A JSON literal typed as text: `3`, `true`, `"a"`; anything else is taken as a string. */
function literal(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function StructuredEditor({ value, onChange, depth }: { value: Structured; onChange: (v: Structured) => void; depth: number }) {
  const field = (label: string, v: string, set: (v: string) => void) => (
    <input className={monoInputClass} aria-label={label} placeholder={label} value={v} onChange={(e) => set(e.target.value)} />
  );
  return (
    <div className="flex flex-col gap-1.5 rounded border border-slate-200 bg-slate-50 p-2" style={{ marginLeft: depth * 4 }}>
      <select className={monoInputClass} aria-label="condition type" value={value.type} onChange={(e) => onChange(fresh(e.target.value as StructuredType))}>
        {TYPES.map((t) => (
          <option key={t}>{t}</option>
        ))}
      </select>
      {value.type === "comparison" && (
        <div className="flex gap-1">
          {field("field", value.field, (f) => onChange({ ...value, field: f }))}
          <select className={monoInputClass} style={{ width: 56 }} aria-label="operator" value={value.op} onChange={(e) => onChange({ ...value, op: e.target.value })}>
            {OPS.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          {value.other_field != null
            ? field("other field", value.other_field, (f) => onChange({ ...value, other_field: f }))
            : field("value (JSON)", JSON.stringify(value.value ?? null), (t) => onChange({ ...value, value: literal(t) }))}
        </div>
      )}
      {value.type === "comparison" && (
        <CheckField
          label="compare with another field"
          checked={value.other_field != null}
          onChange={(on) => {
            const { other_field: _drop, value: _v, ...rest } = value;
            onChange(on ? { ...rest, other_field: "state.y" } : { ...rest, value: "" });
          }}
        />
      )}
      {value.type === "exists" && (
        <>
          {field("field", value.field, (f) => onChange({ ...value, field: f }))}
          <CheckField label="negated (field is absent)" checked={!!value.negated} onChange={(n) => onChange(n ? { ...value, negated: true } : { type: "exists", field: value.field })} />
        </>
      )}
      {value.type === "in_set" && (
        <>
          {field("field", value.field, (f) => onChange({ ...value, field: f }))}
          {field("values (JSON list)", JSON.stringify(value.values), (t) => {
            const v = literal(t);
            if (Array.isArray(v)) onChange({ ...value, values: v });
          })}
        </>
      )}
      {value.type === "array_length" && (
        <div className="flex gap-1">
          {field("field", value.field, (f) => onChange({ ...value, field: f }))}
          <SelectField label="" value={value.op as (typeof OPS)[number]} options={OPS} onChange={(o) => onChange({ ...value, op: o })} />
          <input className={monoInputClass} type="number" aria-label="length" value={value.value} onChange={(e) => onChange({ ...value, value: Number(e.target.value) })} />
        </div>
      )}
      {(value.type === "and" || value.type === "or") && (
        <>
          {value.conditions.map((c, i) => (
            <div key={i} className="flex items-start gap-1">
              <div className="flex-1">
                <StructuredEditor depth={depth + 1} value={c} onChange={(v) => onChange({ ...value, conditions: value.conditions.map((x, j) => (j === i ? v : x)) })} />
              </div>
              <button type="button" aria-label="Remove condition" className="p-0.5 text-slate-400 hover:text-slate-700" onClick={() => onChange({ ...value, conditions: value.conditions.filter((_, j) => j !== i) })}>
                <X size={14} />
              </button>
            </div>
          ))}
          <button type="button" className={smallButton} onClick={() => onChange({ ...value, conditions: [...value.conditions, fresh("exists")] })}>
            <Plus size={12} /> Add condition
          </button>
        </>
      )}
    </div>
  );
}

type Mode = "" | "cel" | "structured";

export function ConditionBuilder({ value, onChange }: { value: Condition | null | undefined; onChange: (v: Condition | undefined) => void }) {
  const mode: Mode = value == null ? "" : typeof value === "string" ? "cel" : "structured";
  const problems = useFieldProblem("transition:condition");
  return (
    <div className={clsx("flex flex-col gap-1.5", problems && invalidClass)} data-invalid={problems ? "true" : undefined}>
      <SelectField<Mode>
        label="condition"
        value={mode}
        options={[{ value: "", label: "none (always true)" }, { value: "cel", label: "CEL expression" }, { value: "structured", label: "structured builder" }]}
        onChange={(m) => onChange(m === "" ? undefined : m === "cel" ? "true" : fresh("comparison"))}
      />
      {typeof value === "string" && (
        <textarea className={monoInputClass} rows={2} aria-label="condition CEL" value={value} onChange={(e) => onChange(e.target.value)} />
      )}
      {value != null && typeof value === "object" && <StructuredEditor depth={0} value={value} onChange={onChange} />}
      {problems?.map((m, i) => (
        <p key={i} className="text-[11px] break-words text-red-700">
          {m}
        </p>
      ))}
    </div>
  );
}
