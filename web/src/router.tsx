// Client-side routes (SPEC §10). The server answers every non-API path with
// index.html, so each of these can be opened directly or reloaded.
import { createRootRoute, createRoute, createRouter } from "@tanstack/react-router";
import { Shell } from "./components/Shell";
import { WorkflowsPage } from "./pages/Workflows";
import { EditorPage } from "./pages/Editor";
import { RunsPage } from "./pages/Runs";
import { RunViewPage } from "./pages/RunView";
import { ComparePage } from "./pages/Compare";
import { RUN_STATUSES, type RunStatus } from "./run/status";

/** The runs list's filters, kept in the URL so a filtered list can be linked. */
export type RunsSearch = { status?: RunStatus; workflow?: string; parent?: string };

const rootRoute = createRootRoute({ component: Shell });

const workflowsRoute = createRoute({ getParentRoute: () => rootRoute, path: "/", component: WorkflowsPage });

export const editorRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/workflows/$name",
  validateSearch: (search: Record<string, unknown>): { version?: number } => {
    const version = Number(search.version);
    return Number.isInteger(version) && version > 0 ? { version } : {};
  },
  component: EditorPage,
});

export const runsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/runs",
  validateSearch: (search: Record<string, unknown>): RunsSearch => ({
    status: RUN_STATUSES.find((s) => s === search.status),
    workflow: typeof search.workflow === "string" && search.workflow ? search.workflow : undefined,
    parent: typeof search.parent === "string" && search.parent ? search.parent : undefined,
  }),
  component: RunsPage,
});

export const runViewRoute = createRoute({ getParentRoute: () => rootRoute, path: "/runs/$id", component: RunViewPage });

/** Two runs side by side (SPEC §5a): `a` is the left column, `b` the right. */
export const compareRoute = createRoute({ getParentRoute: () => rootRoute, path: "/runs/$a/compare/$b", component: ComparePage });

const routeTree = rootRoute.addChildren([workflowsRoute, editorRoute, runsRoute, runViewRoute, compareRoute]);

export const router = createRouter({ routeTree, defaultPreload: "intent" });

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
