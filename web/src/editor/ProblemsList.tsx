// Every problem of the last save (and its warnings), under the canvas. Those
// placed on a node or an edge select it when clicked; the rest (workflow,
// prompt specs, model profiles…) are only here.
import { AlertTriangle, XCircle } from "lucide-react";
import type { PlacedProblems } from "./model/problems";
import type { DefinitionProblem, Selection } from "./model/types";

type Props = { placed: PlacedProblems; warnings: PlacedProblems; onSelect: (s: Selection) => void };

function target(placed: PlacedProblems, p: DefinitionProblem): Selection {
  for (const [ref, list] of placed.byNode) if (list.includes(p)) return { kind: "node", ref };
  for (const [index, list] of placed.byEdge) if (list.includes(p)) return { kind: "edge", index };
  return null;
}

export function ProblemsList({ placed, warnings, onSelect }: Props) {
  if (placed.all.length === 0 && warnings.all.length === 0) return null;
  const rows = [...placed.all.map((p) => ({ p, warning: false, from: placed })), ...warnings.all.map((p) => ({ p, warning: true, from: warnings }))];
  return (
    <div data-testid="problems-list" className="max-h-40 shrink-0 overflow-auto border-t border-slate-200 bg-white">
      <div className="sticky top-0 border-b border-slate-100 bg-white px-3 py-1.5 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">
        {placed.all.length > 0 ? `${placed.all.length} problem${placed.all.length > 1 ? "s" : ""}: nothing was saved` : `Saved with ${warnings.all.length} warning${warnings.all.length > 1 ? "s" : ""}`}
      </div>
      <ul>
        {rows.map(({ p, warning, from }, i) => (
          <li key={i}>
            <button
              type="button"
              className="flex w-full items-start gap-2 px-3 py-1 text-left text-[12px] hover:bg-slate-50"
              onClick={() => onSelect(target(from, p))}
            >
              {warning ? <AlertTriangle size={13} className="mt-0.5 shrink-0 text-amber-600" /> : <XCircle size={13} className="mt-0.5 shrink-0 text-red-600" />}
              <span className="min-w-0">
                <span className="block font-mono text-[11px] text-slate-500">
                  {p.kind} {p.ref}
                  {p.field ? ` · ${p.field}` : ""}
                </span>
                <span className="block break-words text-slate-800">{p.message}</span>
              </span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
