// `execution: { timeout_ms, retry_policy }` of a node (overriding its
// action's) or of an action.
import type { Execution, RetryPolicy } from "../model/types";
import { NumberField, SelectField } from "./fields";

type Props = { value: Execution | null | undefined; onChange: (v: Execution | undefined) => void };

/** Drops empty objects so a cleared field leaves no `execution: {}` behind. */
function tidy(e: Execution): Execution | undefined {
  const out: Execution = {};
  if (e.timeout_ms != null) out.timeout_ms = e.timeout_ms;
  const r = e.retry_policy;
  if (r) {
    const policy: RetryPolicy = {};
    for (const [k, v] of Object.entries(r)) if (v != null) (policy as Record<string, unknown>)[k] = v;
    if (Object.keys(policy).length > 0) out.retry_policy = policy;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function ExecutionFields({ value, onChange }: Props) {
  const e = value ?? {};
  const r = e.retry_policy ?? {};
  const setRetry = (change: Partial<RetryPolicy>) => onChange(tidy({ ...e, retry_policy: { ...r, ...change } }));
  return (
    <div className="grid grid-cols-2 gap-2">
      <NumberField label="timeout_ms" min={1} value={e.timeout_ms} onChange={(v) => onChange(tidy({ ...e, timeout_ms: v }))} />
      <NumberField label="max_attempts" min={1} value={r.max_attempts} onChange={(v) => setRetry({ max_attempts: v })} />
      <SelectField<"none" | "linear" | "exponential">
        label="backoff"
        value={r.backoff ?? ""}
        options={[{ value: "", label: "default" }, "none", "linear", "exponential"]}
        onChange={(v) => setRetry({ backoff: v === "" ? undefined : v })}
      />
      <NumberField label="initial_delay_ms" min={0} value={r.initial_delay_ms} onChange={(v) => setRetry({ initial_delay_ms: v })} />
      <NumberField label="max_delay_ms" min={0} value={r.max_delay_ms} onChange={(v) => setRetry({ max_delay_ms: v })} />
    </div>
  );
}
