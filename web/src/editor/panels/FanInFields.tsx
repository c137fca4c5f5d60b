// A node's join settings: fan_in (all / any / m_of_n), joins, merge and
// on_early_complete (SPEC §3 Fan-in).
import { setOrDelete } from "../model/edit";
import { MERGE_STRATEGIES, type Bundle, type DefNode, type MergeStrategy } from "../model/types";
import { CheckField, NumberField, SelectField, TextField } from "./fields";

type Props = { bundle: Bundle; node: DefNode; onChange: (change: (n: DefNode) => void) => void };

type Mode = "" | "all" | "any" | "m_of_n";

export function FanInFields({ bundle, node, onChange }: Props) {
  const fanIn = node.fan_in;
  const mode: Mode = fanIn == null ? "" : typeof fanIn === "string" ? fanIn : "m_of_n";
  const m = typeof fanIn === "object" && fanIn !== null ? fanIn.m_of_n : 1;
  const setMode = (v: Mode) =>
    onChange((n) => {
      if (v === "") {
        for (const k of ["fan_in", "joins", "merge", "on_early_complete"] as const) delete n[k];
      } else n.fan_in = v === "m_of_n" ? { m_of_n: m } : v;
    });
  const merge = node.merge;
  return (
    <>
      <SelectField<Mode>
        label="fan_in"
        field="node:fan_in"
        value={mode}
        options={[{ value: "", label: "none (not a join)" }, "all", "any", { value: "m_of_n", label: "m_of_n" }]}
        onChange={(v) => setMode(v)}
      />
      {mode === "m_of_n" && <NumberField label="m_of_n" field="node:fan_in.m_of_n" min={1} value={m} onChange={(v) => onChange((n) => (n.fan_in = { m_of_n: v ?? 1 }))} />}
      {mode !== "" && (
        <>
          <SelectField
            label="joins"
            field="node:joins"
            value={node.joins ?? ""}
            hint="The node whose fan-out this join closes"
            options={[{ value: "", label: "— pick the fan-out node —" }, ...bundle.nodes.filter((n) => n.ref !== node.ref).map((n) => n.ref)]}
            onChange={(v) => onChange((n) => setOrDelete(n, "joins", v))}
          />
          <CheckField
            label="merge branch outputs"
            checked={merge != null}
            onChange={(on) => onChange((n) => setOrDelete(n, "merge", on ? { source: "*", target: "state.results", strategy: "collect" } : undefined))}
          />
          {merge && (
            <div className="grid grid-cols-2 gap-2 rounded border border-slate-200 bg-slate-50 p-2" data-testid="merge-editor">
              <TextField label="merge source" field="node:merge.source" mono value={merge.source} hint="In _branch.output; * = all" onChange={(v) => onChange((n) => n.merge && (n.merge.source = v))} />
              <TextField label="merge target" field="node:merge.target" mono value={merge.target} onChange={(v) => onChange((n) => n.merge && (n.merge.target = v))} />
              <div className="col-span-2">
                <SelectField<MergeStrategy> label="merge strategy" field="node:merge.strategy" value={merge.strategy} options={MERGE_STRATEGIES} onChange={(v) => onChange((n) => n.merge && v && (n.merge.strategy = v))} />
              </div>
            </div>
          )}
          <SelectField<"cancel" | "abandon" | "allow_late_merge">
            label="on_early_complete"
            field="node:on_early_complete"
            value={node.on_early_complete ?? ""}
            options={[{ value: "", label: "cancel (default)" }, "cancel", "abandon", "allow_late_merge"]}
            onChange={(v) => onChange((n) => setOrDelete(n, "on_early_complete", v))}
          />
        </>
      )}
    </>
  );
}
