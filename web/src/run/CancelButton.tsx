// Cancel with a confirmation step in place (no modal): the first click asks,
// the second sends POST /api/runs/{id}/cancel. Disabled once the run ended.
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { cancelRun, keys } from "./queries";

export function CancelButton({ runId, ended }: { runId: string; ended: boolean }) {
  const [asking, setAsking] = useState(false);
  const queryClient = useQueryClient();
  const cancel = useMutation({
    mutationFn: () => cancelRun(runId),
    onSettled: () => {
      setAsking(false);
      void queryClient.invalidateQueries({ queryKey: keys.run(runId) });
      void queryClient.invalidateQueries({ queryKey: keys.runView(runId) });
    },
  });
  const base = "rounded border px-3 py-1 text-xs font-medium disabled:cursor-not-allowed disabled:opacity-40";
  if (asking && !ended) {
    return (
      <span className="inline-flex items-center gap-1.5 text-xs text-slate-600">
        Cancel this run and its children?
        <button
          className={`${base} border-red-600 bg-red-600 text-white hover:bg-red-700`}
          onClick={() => cancel.mutate()}
          disabled={cancel.isPending}
        >
          Yes, cancel
        </button>
        <button className={`${base} border-slate-300 bg-white hover:bg-slate-50`} onClick={() => setAsking(false)}>
          Keep running
        </button>
      </span>
    );
  }
  return (
    <span className="inline-flex items-center gap-2">
      {cancel.isError && <span className="text-xs text-status-failed">{cancel.error.message}</span>}
      <button
        className={`${base} border-slate-300 bg-white text-slate-700 hover:border-red-400 hover:text-red-700`}
        disabled={ended}
        onClick={() => setAsking(true)}
      >
        Cancel
      </button>
    </span>
  );
}
