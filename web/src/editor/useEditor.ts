// The editor's state: the bundle (the one source of truth), the selection,
// and the outcome of the last save. Canvas, panels and YAML all read and
// write the bundle through this hook.
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useState } from "react";
import { WORKFLOW_DEFS_KEY } from "../api/workflowDefs";
import { hasLayout } from "../graph/bundle";
import { autoLayout } from "./model/layout";
import { addNode, addTransition, removeNodes, removeTransitions } from "./model/edit";
import { createFromPalette, type PaletteItem } from "./model/palette";
import { NO_PROBLEMS, placeProblems } from "./model/problems";
import { saveBundle } from "./model/save";
import type { Bundle, DefinitionProblem, Layout, Selection } from "./model/types";

export type SaveStatus =
  | { kind: "idle" }
  | { kind: "saving" }
  | { kind: "saved"; version: number; created: boolean }
  | { kind: "invalid"; count: number }
  | { kind: "failed"; message: string };

export function useEditor(initial: Bundle, initialVersion: number | undefined) {
  // A bundle without positions for every node is laid out once on open; that
  // layout counts as the saved state (saving it only stores the positions).
  const [opened] = useState<Bundle>(() => (hasLayout(initial) ? initial : { ...initial, layout: autoLayout(initial) }));
  const [bundle, setBundle] = useState<Bundle>(opened);
  const [selection, setSelection] = useState<Selection>(null);
  const [problems, setProblems] = useState<DefinitionProblem[]>([]);
  const [warnings, setWarnings] = useState<DefinitionProblem[]>([]);
  const [status, setStatus] = useState<SaveStatus>({ kind: "idle" });
  const [version, setVersion] = useState(initialVersion);
  const [savedBundle, setSavedBundle] = useState<Bundle | undefined>(initialVersion ? opened : undefined);
  const [fitKey, setFitKey] = useState(0);

  const placed = useMemo(() => (problems.length > 0 ? placeProblems(bundle, problems) : NO_PROBLEMS), [bundle, problems]);
  const placedWarnings = useMemo(() => (warnings.length > 0 ? placeProblems(bundle, warnings) : NO_PROBLEMS), [bundle, warnings]);

  const refit = useCallback(() => setFitKey((k) => k + 1), []);

  const layout = useCallback(() => {
    setBundle((b) => ({ ...b, layout: autoLayout(b) }));
    setFitKey((k) => k + 1);
  }, []);

  const move = useCallback((positions: Layout) => setBundle((b) => ({ ...b, layout: { ...(b.layout ?? {}), ...positions } })), []);

  const connect = useCallback((from: string, to: string) => setBundle((b) => addTransition(b, { from, to })), []);

  const remove = useCallback((refs: string[], indexes: number[]) => {
    setBundle((b) => removeNodes(removeTransitions(b, indexes), refs));
    setSelection(null);
  }, []);

  const drop = useCallback(
    (item: PaletteItem, position: { x: number; y: number }) => {
      const made = createFromPalette(bundle, item);
      setBundle(addNode(made.bundle, made.node, position));
      setSelection({ kind: "node", ref: made.node.ref });
    },
    [bundle],
  );

  /** A palette click: the new node goes below the lowest one. */
  const add = useCallback(
    (item: PaletteItem) => {
      const ys = Object.values(bundle.layout ?? {});
      const y = ys.length ? Math.max(...ys.map((p) => p.y)) + 150 : 0;
      const x = ys.length ? Math.min(...ys.map((p) => p.x)) : 0;
      drop(item, { x, y });
      // The new node may be below the visible area: bring the whole graph into view.
      setFitKey((k) => k + 1);
    },
    [bundle.layout, drop],
  );

  const queryClient = useQueryClient();
  const save = useCallback(async () => {
    setStatus({ kind: "saving" });
    const sent = bundle;
    const outcome = await saveBundle(sent);
    if (outcome.kind === "saved") {
      // The Workflows page and the runs list's workflow filter may list it now.
      void queryClient.invalidateQueries({ queryKey: WORKFLOW_DEFS_KEY });
      setProblems([]);
      setWarnings(outcome.warnings);
      setVersion(outcome.version);
      setSavedBundle(sent);
      setStatus({ kind: "saved", version: outcome.version, created: outcome.created });
    } else if (outcome.kind === "invalid") {
      setProblems(outcome.problems);
      setWarnings([]);
      setStatus({ kind: "invalid", count: outcome.problems.length });
    } else setStatus({ kind: "failed", message: outcome.message });
    return outcome;
  }, [bundle, queryClient]);

  return {
    bundle,
    setBundle,
    selection,
    setSelection,
    placed,
    placedWarnings,
    status,
    version,
    savedBundle,
    dirty: bundle !== savedBundle,
    fitKey,
    refit,
    layout,
    move,
    connect,
    remove,
    drop,
    add,
    save,
  };
}

export type EditorState = ReturnType<typeof useEditor>;
