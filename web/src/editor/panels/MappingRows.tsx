// `{ key: CEL }` maps (input_mapping, output_mapping, content_mapping) and
// `updates: [{ path, expr }]` lists as editable rows.
import { useContext } from "react";
import { Plus, X } from "lucide-react";
import { FieldProblemsContext } from "./fieldProblems";
import { invalidClass, monoInputClass, smallButton } from "./fields";

type Row = { key: string; value: string };

function Rows({ label, rows, onChange, keyPlaceholder, valuePlaceholder, newKey, rowFields }: {
  label: string;
  rows: Row[];
  onChange: (rows: Row[]) => void;
  keyPlaceholder: string;
  valuePlaceholder: string;
  newKey: (rows: Row[]) => string;
  /** The save-problem keys of a row (fieldProblems.ts). */
  rowFields?: (row: Row, index: number) => string[];
}) {
  const problems = useContext(FieldProblemsContext);
  const set = (i: number, row: Partial<Row>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...row } : r)));
  return (
    <div className="flex flex-col gap-1" role="group" aria-label={label}>
      <div className="flex items-center justify-between">
        <span className="text-[12px] font-medium text-slate-700">{label}</span>
        <button type="button" className={smallButton} onClick={() => onChange([...rows, { key: newKey(rows), value: "" }])} aria-label={`Add ${label} row`}>
          <Plus size={12} /> Add
        </button>
      </div>
      {rows.length === 0 && <p className="text-[11px] text-slate-400">None.</p>}
      {rows.map((r, i) => {
        const messages = (rowFields?.(r, i) ?? []).flatMap((f) => problems.get(f) ?? []);
        const invalid = messages.length > 0;
        return (
          <div key={i} className={invalid ? invalidClass : undefined} data-invalid={invalid ? "true" : undefined}>
            <div className="flex items-center gap-1">
              <input className={monoInputClass} style={{ flex: "2 1 0" }} value={r.key} placeholder={keyPlaceholder} aria-label={`${label} ${i + 1} path`} onChange={(e) => set(i, { key: e.target.value })} />
              <span className="text-[11px] text-slate-400">←</span>
              <input className={monoInputClass} style={{ flex: "3 1 0" }} value={r.value} placeholder={valuePlaceholder} aria-label={`${label} ${i + 1} CEL`} onChange={(e) => set(i, { value: e.target.value })} />
              <button type="button" className="rounded p-0.5 text-slate-400 hover:bg-slate-100 hover:text-slate-700" aria-label={`Remove ${label} row ${i + 1}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
                <X size={14} />
              </button>
            </div>
            {messages.map((m, j) => (
              <p key={j} className="text-[11px] break-words text-red-700">
                {m}
              </p>
            ))}
          </div>
        );
      })}
    </div>
  );
}

function freshKey(prefix: string, rows: Row[]): string {
  const taken = new Set(rows.map((r) => r.key));
  for (let i = 1; ; i++) if (!taken.has(`${prefix}${i}`)) return `${prefix}${i}`;
}

/** A `{ key: CEL }` map; undefined when emptied, so the field leaves the bundle. */
/** `field`: the map's problem key (`node:output_mapping`); a row's is `<field>.<its key>`. */
export function MapRows({ label, value, onChange, keyPrefix, field }: { label: string; value: Record<string, string> | undefined; onChange: (v: Record<string, string> | undefined) => void; keyPrefix: string; field?: string }) {
  const rows = Object.entries(value ?? {}).map(([key, v]) => ({ key, value: v }));
  return (
    <Rows
      label={label}
      rows={rows}
      keyPlaceholder="path"
      valuePlaceholder="CEL"
      newKey={(rs) => freshKey(keyPrefix, rs)}
      rowFields={field ? (r) => [`${field}.${r.key}`] : undefined}
      onChange={(rs) => onChange(rs.length === 0 ? undefined : Object.fromEntries(rs.map((r) => [r.key, r.value])))}
    />
  );
}

/** `updates: [{ path, expr }]` of an update_context action. */
export function UpdateRows({ value, onChange }: { value: { path: string; expr: string }[] | undefined; onChange: (v: { path: string; expr: string }[]) => void }) {
  return (
    <Rows
      label="updates"
      rows={(value ?? []).map((u) => ({ key: u.path, value: u.expr }))}
      keyPlaceholder="state.path"
      valuePlaceholder="CEL"
      newKey={(rs) => freshKey("state.value", rs)}
      rowFields={(_, i) => [`action:updates[${i}].path`, `action:updates[${i}].expr`, `action:updates[${i}]`]}
      onChange={(rs) => onChange(rs.map((r) => ({ path: r.key, expr: r.value })))}
    />
  );
}
