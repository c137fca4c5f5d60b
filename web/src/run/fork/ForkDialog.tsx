// *Fork from here* (SPEC §5a): a dialog over the node inspector. It shows
// the node's action and, for an llm_call, its prompt spec and model profile
// from the run's version as YAML to edit, plus an optional target version.
// Submit posts the fork with the objects that changed and opens the new run.
// A YAML error or the server's refusal (422 FORK_INCOMPATIBLE…) is shown in
// the dialog; the texts stay as typed.
import { useEffect, useMemo, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { GitBranch, X } from "lucide-react";
import clsx from "clsx";
import { ApiFailure, forkRun, type ForkChanges } from "../../api/fork";
import type { Bundle, DefinitionProblem } from "../../editor/model/types";
import { shortId } from "../format";
import { forkPieces, type Piece } from "./pieces";
import { objectToYaml, sameValue, yamlToObject } from "./yamlObject";

type Props = { runId: string; version: number; node: string; bundle: Bundle; onClose: () => void };

export function ForkDialog({ runId, version, node, bundle, onClose }: Props) {
  const pieces = useMemo(() => forkPieces(bundle, node), [bundle, node]);
  const initial = useMemo(() => Object.fromEntries(pieces.map((p) => [p.key, objectToYaml(p.original)])), [pieces]);
  const [texts, setTexts] = useState<Record<string, string>>(initial);
  const [target, setTarget] = useState("");
  const [tried, setTried] = useState(false);
  const navigate = useNavigate();
  const queryClient = useQueryClient();

  // Escape or a click outside closes only an untouched dialog: typed edits are not thrown away.
  const touched = target !== "" || pieces.some((p) => texts[p.key] !== initial[p.key]);
  const dismiss = touched ? () => {} : onClose;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && dismiss();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [dismiss]);

  const parsed = pieces.map((p) => ({ piece: p, result: p.editable ? yamlToObject<{ ref: string }>(texts[p.key], p.ref) : null }));
  const yamlErrors = parsed.filter((x) => x.result && !x.result.ok);
  const changed = parsed.filter((x) => x.result?.ok && !sameValue(x.result.value, x.piece.original));
  const targetVersion = target.trim() === "" ? undefined : Number(target);
  const badVersion = targetVersion !== undefined && !(Number.isInteger(targetVersion) && targetVersion > 0);

  const fork = useMutation({
    mutationFn: () => {
      const changes: ForkChanges = {};
      for (const { piece, result } of changed) if (result?.ok) (changes[piece.kind] ??= []).push(result.value as never);
      return forkRun(runId, {
        from: { node },
        ...(changed.length > 0 ? { changes } : {}),
        ...(targetVersion !== undefined ? { version: targetVersion } : {}),
      });
    },
    onSuccess: (answer) => {
      void queryClient.invalidateQueries({ queryKey: ["runs"] });
      onClose();
      void navigate({ to: "/runs/$id", params: { id: answer.run_id } });
    },
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (yamlErrors.length > 0 || badVersion) return;
    fork.mutate();
  };

  return (
    <div className="fixed inset-0 z-50 flex items-start justify-center overflow-auto bg-slate-900/40 py-12" onMouseDown={(e) => e.target === e.currentTarget && dismiss()}>
      <form
        role="dialog"
        aria-modal="true"
        aria-labelledby="fork-dialog-title"
        data-testid="fork-dialog"
        onSubmit={submit}
        className="flex max-h-[calc(100vh-6rem)] w-[640px] max-w-[92vw] flex-col rounded-lg border border-slate-200 bg-white shadow-xl"
      >
        <div className="flex shrink-0 items-center justify-between border-b border-slate-200 px-4 py-3">
          <h2 id="fork-dialog-title" className="flex items-center gap-2 text-[14px] font-semibold text-slate-900">
            <GitBranch size={15} className="text-slate-500" />
            Fork from <span className="font-mono">{node}</span>
            <span className="font-normal text-slate-500">
              of <span className="font-mono">{shortId(runId)}</span> (v{version})
            </span>
          </h2>
          <button type="button" aria-label="Close" className="rounded p-1 text-slate-400 hover:bg-slate-100 hover:text-slate-700" onClick={onClose}>
            <X size={16} />
          </button>
        </div>
        <div className="min-h-0 flex-1 space-y-4 overflow-auto px-4 py-3">
          <p className="text-[12px] leading-relaxed text-slate-600">
            The new run copies this run&apos;s history up to the first visit of <span className="font-mono">{node}</span> and runs live from
            there; nothing before it is called or paid for again. Edited objects replace the ones with the same ref in the target version.
          </p>
          {pieces.map((p) => (
            <PieceEditor
              key={p.key}
              piece={p}
              text={texts[p.key]}
              onText={(t) => setTexts((all) => ({ ...all, [p.key]: t }))}
              error={parsed.find((x) => x.piece.key === p.key)?.result}
              changed={changed.some((x) => x.piece.key === p.key)}
            />
          ))}
          <label className="flex flex-col gap-0.5">
            <span className="text-[12px] font-medium text-slate-700">Target version</span>
            <input
              type="number"
              min={1}
              className={clsx(
                "w-40 rounded border bg-white px-2 py-1 font-mono text-[12px] focus:ring-1 focus:outline-none",
                badVersion ? "border-red-500 focus:ring-red-500" : "border-slate-300 focus:border-blue-500 focus:ring-blue-500",
              )}
              value={target}
              placeholder={`${version} (this run's)`}
              onChange={(e) => setTarget(e.target.value)}
              data-testid="fork-version"
            />
            <span className={clsx("text-[11px]", badVersion ? "text-red-700" : "text-slate-500")}>
              {badVersion ? "a version is a whole number ≥ 1" : "Empty: this run's version. With changes, a new experiment version is saved."}
            </span>
          </label>
        </div>
        <div className="shrink-0 space-y-2 border-t border-slate-200 px-4 py-3">
          {fork.isError && <ServerError error={fork.error} />}
          {tried && yamlErrors.length > 0 && (
            <p role="alert" className="text-[12px] text-red-700" data-testid="fork-yaml-problem">
              Fix the YAML of the {yamlErrors.map((x) => x.piece.label.toLowerCase()).join(" and ")} first: nothing was sent.
            </p>
          )}
          <div className="flex items-center justify-end gap-2">
            <span className="mr-auto text-[12px] text-slate-500" data-testid="fork-summary">
              {summary(changed.map((x) => x.piece.label.toLowerCase()), yamlErrors.length > 0)}
            </span>
            <button type="button" className="rounded border border-slate-300 bg-white px-3 py-1.5 text-[12px] font-medium text-slate-700 hover:bg-slate-50" onClick={onClose}>
              Cancel
            </button>
            <button
              type="submit"
              disabled={fork.isPending}
              className="rounded border border-blue-700 bg-blue-600 px-3 py-1.5 text-[12px] font-medium text-white hover:bg-blue-700 disabled:opacity-50"
            >
              {fork.isPending ? "Forking…" : "Fork and run"}
            </button>
          </div>
        </div>
      </form>
    </div>
  );
}

function PieceEditor({
  piece,
  text,
  onText,
  error,
  changed,
}: {
  piece: Piece;
  text: string;
  onText: (t: string) => void;
  error: { ok: true } | { ok: false; error: string } | null | undefined;
  changed: boolean;
}) {
  const id = `fork-${piece.key}`;
  const rows = Math.min(14, Math.max(3, text.split("\n").length));
  const bad = error && !error.ok ? error.error : undefined;
  return (
    <div className="flex flex-col gap-1" data-testid={`fork-piece-${piece.key}`}>
      <div className="flex items-baseline gap-2">
        <label htmlFor={id} className="text-[12px] font-medium text-slate-700">
          {piece.label} <span className="font-mono font-normal text-slate-500">{piece.ref}</span>
        </label>
        <span className="text-[11px] text-slate-400">{piece.note}</span>
        {changed && <span className="ml-auto rounded bg-blue-50 px-1.5 text-[11px] font-medium text-blue-700">edited</span>}
      </div>
      {piece.editable ? (
        <textarea
          id={id}
          rows={rows}
          spellCheck={false}
          className={clsx(
            "w-full rounded border bg-white px-2 py-1.5 font-mono text-[12px] leading-relaxed text-slate-900 focus:ring-1 focus:outline-none",
            bad ? "border-red-500 focus:ring-red-500" : "border-slate-300 focus:border-blue-500 focus:ring-blue-500",
          )}
          value={text}
          onChange={(e) => onText(e.target.value)}
          aria-invalid={bad ? true : undefined}
        />
      ) : (
        <pre id={id} className="max-h-40 overflow-auto rounded border border-slate-200 bg-slate-50 px-2 py-1.5 font-mono text-[12px] leading-relaxed whitespace-pre-wrap text-slate-700">
          {text}
        </pre>
      )}
      {bad && (
        <p className="font-mono text-[11px] text-red-700" data-testid="fork-yaml-error">
          {bad}
        </p>
      )}
    </div>
  );
}

/** The server's refusal: code and message, and the problems of a changed version that does not validate. */
function ServerError({ error }: { error: Error }) {
  const code = error instanceof ApiFailure ? error.code : undefined;
  const details = error instanceof ApiFailure ? (error.details as { errors?: DefinitionProblem[] } | undefined) : undefined;
  return (
    <div role="alert" data-testid="fork-error" className="max-h-40 overflow-auto rounded border border-red-300 bg-red-50 px-2.5 py-2 text-[12px] text-red-800">
      {code && <span className="mr-1.5 font-mono font-semibold">{code}</span>}
      <span className="break-words">{error.message}</span>
      {/* One problem is already in the message; several read better as a list. */}
      {Array.isArray(details?.errors) && details.errors.length > 1 && (
        <ul className="mt-1 list-disc pl-4">
          {details.errors.map((p, i) => (
            <li key={i} className="break-words">
              <span className="font-mono">
                {p.kind} {p.ref}
                {p.field && ` · ${p.field}`}
              </span>
              : {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function summary(changed: string[], unreadable: boolean): string {
  if (changed.length > 0) return `Changed: ${changed.join(", ")}${unreadable ? " (and YAML to fix)" : ""}`;
  return unreadable ? "" : "No changes: the fork reruns from here as it is.";
}
