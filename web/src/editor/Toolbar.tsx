// The editor's top bar: which workflow and version, the save outcome, and
// the actions (Layout, YAML, Save, Run).
import { Code, LayoutGrid, Loader2, Play, Save } from "lucide-react";
import clsx from "clsx";
import type { EditorState } from "./useEditor";

const button = "inline-flex h-8 items-center gap-1.5 rounded border border-slate-300 bg-white px-3 text-[13px] font-medium text-slate-700 hover:bg-slate-50 disabled:opacity-50";

function StatusText({ status }: { status: EditorState["status"] }) {
  switch (status.kind) {
    case "idle":
      return null;
    case "saving":
      return <span className="text-slate-500">Saving…</span>;
    case "saved":
      return status.created ? (
        <span className="text-green-700">version {status.version} saved</span>
      ) : (
        <span className="text-slate-600">unchanged (version {status.version})</span>
      );
    case "invalid":
      return <span className="text-red-700">{status.count === 1 ? "1 problem" : `${status.count} problems`}: not saved</span>;
    case "failed":
      return <span className="text-red-700">Save failed: {status.message}</span>;
  }
}

type Props = { editor: EditorState; yamlOpen: boolean; onToggleYaml: () => void; onRun: () => void };

export function Toolbar({ editor, yamlOpen, onToggleYaml, onRun }: Props) {
  const { bundle, version, dirty, status } = editor;
  return (
    <div className="flex h-12 shrink-0 items-center gap-3 border-b border-slate-200 bg-white px-4">
      <div className="flex min-w-0 items-baseline gap-2">
        <h1 className="truncate font-mono text-[15px] font-semibold text-slate-900">{bundle.name}</h1>
        <span className="shrink-0 text-[12px] text-slate-500" data-testid="editor-version">
          {version ? `version ${version}` : "new, not saved yet"}
          {version && dirty ? " · edited" : ""}
        </span>
      </div>
      <div role="status" data-testid="save-status" className="min-w-0 truncate text-[12px]">
        <StatusText status={status} />
      </div>
      <div className="ml-auto flex shrink-0 items-center gap-2">
        <button type="button" className={button} onClick={editor.layout} title="Lay the graph out automatically">
          <LayoutGrid size={14} /> Layout
        </button>
        <button type="button" className={clsx(button, yamlOpen && "border-blue-300 bg-blue-50 text-blue-700")} onClick={onToggleYaml} aria-pressed={yamlOpen}>
          <Code size={14} /> YAML
        </button>
        <button type="button" className={button} disabled={!version} onClick={onRun} title={version ? `Run version ${version}` : "Save first"}>
          <Play size={14} /> Run
        </button>
        <button
          type="button"
          className="inline-flex h-8 items-center gap-1.5 rounded bg-blue-600 px-3 text-[13px] font-medium text-white hover:bg-blue-700 disabled:opacity-60"
          disabled={status.kind === "saving"}
          onClick={() => void editor.save()}
        >
          {status.kind === "saving" ? <Loader2 size={14} className="animate-spin" /> : <Save size={14} />} Save
        </button>
      </div>
    </div>
  );
}
