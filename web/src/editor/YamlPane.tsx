// The bundle as YAML beside the canvas. The bundle stays the one source of
// truth: an edit that parses replaces it (and the canvas follows); one that
// does not is shown inline while the canvas keeps the last good bundle. A
// bundle changed elsewhere rewrites the text, except the one this pane just
// produced (so the cursor and formatting are not disturbed while typing).
import { useEffect, useMemo, useRef, useState } from "react";
import CodeMirror, { EditorView } from "@uiw/react-codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { completeLayout } from "./model/layout";
import { bundleToYaml, yamlToBundle } from "./model/yaml";
import type { Bundle } from "./model/types";

export default function YamlPane({ bundle, onBundle }: { bundle: Bundle; onBundle: (b: Bundle) => void }) {
  const [text, setText] = useState(() => bundleToYaml(bundle));
  const [error, setError] = useState<{ message: string; line?: number }>();
  const ours = useRef<Bundle | null>(null);
  // Wrapped lines: the pane is narrow and inline mappings are long.
  const extensions = useMemo(() => [yaml(), EditorView.lineWrapping], []);

  useEffect(() => {
    if (bundle === ours.current) return;
    setText(bundleToYaml(bundle));
    setError(undefined);
  }, [bundle]);

  return (
    <div className="flex h-full min-h-0 flex-col" data-testid="yaml-pane">
      <div className="flex h-8 shrink-0 items-center justify-between border-b border-slate-200 bg-slate-50 px-3 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">
        YAML
        {error ? <span className="normal-case text-red-600">not applied</span> : <span className="font-normal normal-case text-slate-400">in step with the canvas</span>}
      </div>
      {error && (
        <div role="alert" data-testid="yaml-error" className="border-b border-red-200 bg-red-50 px-3 py-1.5 font-mono text-[11px] text-red-700">
          {error.line ? `line ${error.line}: ` : ""}
          {error.message}
        </div>
      )}
      <div className="min-h-0 flex-1 overflow-auto text-[12px]">
        <CodeMirror
          value={text}
          extensions={extensions}
          basicSetup={{ foldGutter: false, highlightActiveLine: false }}
          onChange={(value) => {
            setText(value);
            const parsed = yamlToBundle(value);
            if (parsed.ok) {
              setError(undefined);
              // Nodes typed without a position get one; the text is left as typed.
              ours.current = completeLayout(parsed.bundle);
              onBundle(ours.current);
            } else setError({ message: parsed.error, line: parsed.line });
          }}
        />
      </div>
    </div>
  );
}
