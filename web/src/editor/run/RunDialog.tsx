// The Run dialog: a modal around the lazily loaded input form. Runs the
// last saved version (the form says which).
import { Suspense, lazy, useEffect } from "react";
import { X } from "lucide-react";

const RunForm = lazy(() => import("./RunForm"));

type Props = { workflow: string; version: number; schema: unknown; dirty: boolean; onClose: () => void };

export function RunDialog({ workflow, version, schema, dirty, onClose }: Props) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="fixed inset-0 z-50 flex items-start justify-center bg-slate-900/40 pt-24" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div role="dialog" aria-modal="true" aria-labelledby="run-dialog-title" className="w-[480px] max-w-[90vw] rounded-lg border border-slate-200 bg-white shadow-xl">
        <div className="flex items-center justify-between border-b border-slate-200 px-4 py-3">
          <h2 id="run-dialog-title" className="text-[14px] font-semibold text-slate-900">
            Run <span className="font-mono">{workflow}</span> <span className="font-normal text-slate-500">version {version}</span>
          </h2>
          <button type="button" aria-label="Close" className="rounded p-1 text-slate-400 hover:bg-slate-100 hover:text-slate-700" onClick={onClose}>
            <X size={16} />
          </button>
        </div>
        <div className="max-h-[60vh] overflow-auto px-4 py-3">
          {dirty && <p className="mb-3 rounded bg-amber-50 px-2 py-1.5 text-[12px] text-amber-800">The editor has unsaved changes; this runs the saved version {version}.</p>}
          <Suspense fallback={<p className="text-[12px] text-slate-500">Loading the form…</p>}>
            <RunForm workflow={workflow} version={version} schema={schema} onCancel={onClose} />
          </Suspense>
        </div>
      </div>
    </div>
  );
}
