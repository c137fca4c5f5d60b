// Small form controls shared by the panels: one look (12–13 px, quiet
// borders), labels tied to inputs so tests and screen readers find them.
import { useEffect, useId, useState, type ReactNode } from "react";
import clsx from "clsx";
import { useFieldProblem } from "./fieldProblems";

export const inputClass =
  "w-full rounded border border-slate-300 bg-white px-2 py-1 text-[12px] text-slate-900 placeholder:text-slate-400 focus:border-blue-500 focus:ring-1 focus:ring-blue-500 focus:outline-none";
export const monoInputClass = clsx(inputClass, "font-mono");
export const smallButton =
  "inline-flex items-center gap-1 rounded border border-slate-300 bg-white px-2 py-0.5 text-[12px] font-medium text-slate-700 hover:bg-slate-50 disabled:opacity-50";

export function Section({ title, children, aside }: { title: string; children: ReactNode; aside?: ReactNode }) {
  return (
    <section className="border-b border-slate-200 px-3 py-3">
      <div className="mb-2 flex items-center justify-between">
        <h3 className="text-[11px] font-semibold tracking-wide text-slate-500 uppercase">{title}</h3>
        {aside}
      </div>
      <div className="flex flex-col gap-2">{children}</div>
    </section>
  );
}

/**
 * A labelled control; `field` names it for the save problems (fieldProblems.ts).
 * `error` is the control's own check of what was typed, shown until the
 * last save names a problem of the field.
 */
export function Field({ label, hint, field, error, children }: { label: string; hint?: string; field?: string; error?: string; children: (id: string) => ReactNode }) {
  const id = useId();
  const saved = useFieldProblem(field);
  const problems = saved ?? (error ? [error] : undefined);
  return (
    <div className={clsx("flex flex-col gap-0.5", problems && invalidClass)} data-invalid={problems ? "true" : undefined}>
      <label htmlFor={id} className="text-[12px] font-medium text-slate-700">
        {label}
      </label>
      {children(id)}
      {problems
        ? problems.map((m, i) => (
            <p key={i} className="text-[11px] break-words text-red-700">
              {m}
            </p>
          ))
        : hint && <p className="text-[11px] text-slate-500">{hint}</p>}
    </div>
  );
}

/** Red borders on every control inside (a field or a row with a save problem). */
export const invalidClass = "[&_input]:border-red-500 [&_select]:border-red-500 [&_textarea]:border-red-500";

type TextProps = { label: string; value: string | null | undefined; onChange: (v: string) => void; mono?: boolean; placeholder?: string; hint?: string; field?: string };

export function TextField({ label, value, onChange, mono, placeholder, hint, field }: TextProps) {
  return (
    <Field label={label} hint={hint} field={field}>
      {(id) => (
        <input id={id} className={mono ? monoInputClass : inputClass} value={value ?? ""} placeholder={placeholder} onChange={(e) => onChange(e.target.value)} />
      )}
    </Field>
  );
}

/** A text field that commits on blur or Enter (for refs: intermediate values would collide). */
export function CommitField({ label, value, onCommit, mono, hint, field }: { label: string; value: string; onCommit: (v: string) => void; mono?: boolean; hint?: string; field?: string }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const commit = () => (text.trim() && text !== value ? onCommit(text.trim()) : setText(value));
  return (
    <Field label={label} hint={hint} field={field}>
      {(id) => (
        <input
          id={id}
          className={mono ? monoInputClass : inputClass}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => e.key === "Enter" && commit()}
        />
      )}
    </Field>
  );
}

export function TextArea({ label, value, onChange, rows = 3, mono, hint, field }: TextProps & { rows?: number }) {
  return (
    <Field label={label} hint={hint} field={field}>
      {(id) => <textarea id={id} rows={rows} className={mono ? monoInputClass : inputClass} value={value ?? ""} onChange={(e) => onChange(e.target.value)} />}
    </Field>
  );
}

export function NumberField({ label, value, onChange, hint, min, field, validate }: { label: string; value: number | null | undefined; onChange: (v: number | undefined) => void; hint?: string; min?: number; field?: string; validate?: (v: number) => string | undefined }) {
  return (
    <Field label={label} hint={hint} field={field} error={value == null || !validate ? undefined : validate(value)}>
      {(id) => (
        <input
          id={id}
          type="number"
          min={min}
          className={monoInputClass}
          value={value ?? ""}
          onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
        />
      )}
    </Field>
  );
}

export function SelectField<T extends string>({ label, value, options, onChange, hint, field }: { label: string; value: T | ""; options: readonly (T | { value: T | ""; label: string })[]; onChange: (v: T | "") => void; hint?: string; field?: string }) {
  return (
    <Field label={label} hint={hint} field={field}>
      {(id) => (
        <select id={id} className={inputClass} value={value} onChange={(e) => onChange(e.target.value as T | "")}>
          {options.map((o) => {
            const opt = typeof o === "string" ? { value: o, label: o } : o;
            return (
              <option key={opt.value} value={opt.value}>
                {opt.label}
              </option>
            );
          })}
        </select>
      )}
    </Field>
  );
}

/** JSON edited as text; the value changes only when the text parses (an error is shown meanwhile). */
export function JsonField({ label, value, onChange, rows = 4, hint, field }: { label: string; value: unknown; onChange: (v: unknown) => void; rows?: number; hint?: string; field?: string }) {
  const shown = value === undefined ? "" : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string>();
  useEffect(() => {
    setText((t) => (safeParse(t) === shown ? t : shown));
    setError(undefined);
  }, [shown]);
  return (
    <Field label={label} hint={hint} field={field}>
      {(id) => (
        <>
          <textarea
            id={id}
            rows={rows}
            className={clsx(monoInputClass, error && "border-red-400")}
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              if (e.target.value.trim() === "") {
                setError(undefined);
                onChange(undefined);
                return;
              }
              try {
                const v: unknown = JSON.parse(e.target.value);
                setError(undefined);
                onChange(v);
              } catch (err) {
                setError((err as Error).message);
              }
            }}
          />
          {error && <p className="text-[11px] text-red-600">{error}</p>}
        </>
      )}
    </Field>
  );
}

function safeParse(t: string): string | undefined {
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return undefined;
  }
}

export function CheckField({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="flex items-center gap-2 text-[12px] text-slate-700">
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {label}
    </label>
  );
}

/** The last save's problems (red) or warnings (amber) about the selected object. */
export function ProblemBox({ problems, warning }: { problems?: { field: string; message: string }[]; warning?: boolean }) {
  if (!problems || problems.length === 0) return null;
  return (
    <div
      role={warning ? "status" : "alert"}
      data-testid={warning ? "panel-warnings" : "panel-problems"}
      className={clsx(
        "mx-3 mt-3 rounded border px-2.5 py-2 text-[12px]",
        warning ? "border-amber-300 bg-amber-50 text-amber-900" : "border-red-300 bg-red-50 text-red-800",
      )}
    >
      {problems.map((p, i) => (
        // Two lines each: the full message is also at the field it names.
        <p key={i} className="line-clamp-2 break-words" title={p.message}>
          <span className="font-mono font-semibold">{p.field}</span>: {p.message}
        </p>
      ))}
    </div>
  );
}
