// The default project's workflows (GET /api/workflow-defs), one cached list
// for every page that shows them: the Workflows page and the runs filter.
// A save in the editor invalidates WORKFLOW_DEFS_KEY.
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "./client";

export const WORKFLOW_DEFS_KEY = ["workflow-defs"] as const;

export function useWorkflowDefs() {
  return useQuery({
    queryKey: WORKFLOW_DEFS_KEY,
    queryFn: async () => unwrap(await api.GET("/api/workflow-defs", { params: { query: { limit: 1000 } } })).items,
  });
}
