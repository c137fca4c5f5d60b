// A workflow's latest run (GET /api/runs?workflow=…&limit=1): status and
// when, linking to the run view.
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { api, unwrap } from "../../api/client";
import { StatusBadge } from "./StatusBadge";
import { ago } from "./time";

export function LastRun({ workflow }: { workflow: string }) {
  const query = useQuery({
    queryKey: ["last-run", workflow],
    queryFn: async () => unwrap(await api.GET("/api/runs", { params: { query: { workflow, limit: 1 } } })).items[0] ?? null,
  });
  if (query.isPending) return <span className="text-slate-400">…</span>;
  if (query.isError) return <span className="text-red-600">{query.error.message}</span>;
  const run = query.data;
  if (!run) return <span className="text-slate-400">never run</span>;
  return (
    <Link to="/runs/$id" params={{ id: run.id }} className="inline-flex items-center gap-2 hover:underline" title={run.created_at}>
      <StatusBadge status={run.status} />
      <span className="text-slate-500">
        v{run.workflow.version} · {ago(run.created_at)}
      </span>
    </Link>
  );
}
