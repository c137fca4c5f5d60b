// The editor's frame: toolbar; palette | canvas (+ problems) | YAML | panel.
import { Suspense, lazy, useCallback, useMemo, useState } from "react";
import { ReactFlowProvider } from "@xyflow/react";
import { useBlocker } from "@tanstack/react-router";
import { Canvas } from "./canvas/Canvas";
import { ProblemsContext } from "./canvas/context";
import { Palette } from "./Palette";
import { ProblemsList } from "./ProblemsList";
import { EdgePanel } from "./panels/EdgePanel";
import { NodePanel } from "./panels/NodePanel";
import { WorkflowPanel } from "./panels/WorkflowPanel";
import { RunDialog } from "./run/RunDialog";
import { Toolbar } from "./Toolbar";
import { useEditor } from "./useEditor";
import type { Bundle } from "./model/types";

// CodeMirror is loaded when the YAML pane is first opened.
const YamlPane = lazy(() => import("./YamlPane"));

export function EditorView({ initial, version }: { initial: Bundle; version: number | undefined }) {
  const editor = useEditor(initial, version);
  const { bundle, setBundle, selection, setSelection, placed, placedWarnings } = editor;
  const findings = useMemo(() => ({ errors: placed, warnings: placedWarnings }), [placed, placedWarnings]);
  const [yamlOpen, setYamlOpen] = useState(false);
  const [runOpen, setRunOpen] = useState(false);
  const closeRun = useCallback(() => setRunOpen(false), []);
  // Leaving with unsaved edits (another page, a started run, closing the tab) asks first:
  // the editor's state lives only here.
  useBlocker({
    shouldBlockFn: () => editor.dirty && !window.confirm("Leave the editor? Your unsaved changes will be lost."),
    enableBeforeUnload: () => editor.dirty,
  });

  return (
    <ReactFlowProvider>
      <ProblemsContext.Provider value={findings}>
        <div className="flex h-full flex-col">
          <Toolbar editor={editor} yamlOpen={yamlOpen} onToggleYaml={() => {
              setYamlOpen((o) => !o);
              editor.refit();
            }} onRun={() => setRunOpen(true)} />
          <div className="flex min-h-0 flex-1">
            <aside className={`${yamlOpen ? "w-14" : "w-44"} shrink-0 overflow-auto border-r border-slate-200 bg-slate-50`}>
              <Palette onAdd={editor.add} compact={yamlOpen} />
            </aside>
            <div className="flex min-w-0 flex-1 flex-col">
              <div className="min-h-0 flex-1" data-testid="canvas">
                <Canvas
                  bundle={bundle}
                  selection={selection}
                  onSelect={setSelection}
                  onMove={editor.move}
                  onConnect={editor.connect}
                  onDelete={editor.remove}
                  onDrop={editor.drop}
                  fitKey={editor.fitKey}
                />
              </div>
              <ProblemsList placed={placed} warnings={placedWarnings} onSelect={setSelection} />
            </div>
            {yamlOpen && (
              <div className="w-[380px] shrink-0 border-l border-slate-200 bg-white">
                <Suspense fallback={<p className="p-3 text-[12px] text-slate-500">Loading the YAML editor…</p>}>
                  <YamlPane bundle={bundle} onBundle={setBundle} />
                </Suspense>
              </div>
            )}
            <aside className="w-[340px] shrink-0 overflow-auto border-l border-slate-200 bg-white" aria-label="Properties">
              {selection?.kind === "node" ? (
                <NodePanel key={selection.ref} bundle={bundle} nodeRef={selection.ref} problems={placed.byNode.get(selection.ref)} warnings={placedWarnings.byNode.get(selection.ref)} onBundle={setBundle} onSelect={setSelection} />
              ) : selection?.kind === "edge" ? (
                <EdgePanel key={selection.index} bundle={bundle} index={selection.index} problems={placed.byEdge.get(selection.index)} warnings={placedWarnings.byEdge.get(selection.index)} onBundle={setBundle} onDeleted={() => setSelection(null)} />
              ) : (
                <WorkflowPanel bundle={bundle} problems={placed.workflow} warnings={placedWarnings.workflow} onBundle={setBundle} />
              )}
            </aside>
          </div>
        </div>
        {runOpen && editor.version && (
          <RunDialog workflow={bundle.name} version={editor.version} schema={editor.savedBundle?.input_schema} dirty={editor.dirty} onClose={closeRun} />
        )}
      </ProblemsContext.Provider>
    </ReactFlowProvider>
  );
}
