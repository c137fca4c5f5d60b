// Query keys and fetchers of the run pages, so that the live updates can
// patch or invalidate exactly what the views read.
import { api, unwrap, type Schemas } from "../api/client";
import type { RunStatus } from "./status";

export type Run = Schemas["Run"];
export type RunSummary = Schemas["RunSummary"];
export type LiveRun = Schemas["LiveRun"];
export type Token = Schemas["Token"];
export type TokenDetail = Schemas["TokenDetail"];
export type SiblingSet = Schemas["SiblingSet"];
export type NodeSummary = Schemas["NodeSummary"];
export type RunEvent = Schemas["Event"];
export type Usage = Schemas["RunUsage"];

export type RunsFilter = { status?: RunStatus; workflow?: string; parent?: string };

export const keys = {
  runs: (filter: RunsFilter) => ["runs", filter] as const,
  run: (id: string) => ["run", id] as const,
  /** Everything of one run's view; invalidated while the run is live. */
  runView: (id: string) => ["run-view", id] as const,
  nodes: (id: string) => ["run-view", id, "nodes"] as const,
  sets: (id: string, parent: string) => ["run-view", id, "sets", parent] as const,
  tokens: (id: string, filter: TokenFilter) => ["run-view", id, "tokens", filter] as const,
  token: (id: string, tokenId: string) => ["run-view", id, "token", tokenId] as const,
  bundle: (workflowId: string, version: number) => ["bundle", workflowId, version] as const,
};

export type TokenFilter = { node?: string; sibling_set?: string; cursor?: string; limit?: number };

export async function fetchRuns(filter: RunsFilter, cursor: string | undefined) {
  return unwrap(await api.GET("/api/runs", { params: { query: { ...filter, cursor, limit: 50 } } }));
}

export async function fetchRun(id: string) {
  return unwrap(await api.GET("/api/runs/{id}", { params: { path: { id } } }));
}

export async function fetchNodes(id: string) {
  return unwrap(await api.GET("/api/runs/{id}/nodes", { params: { path: { id } } }));
}

export async function fetchSets(id: string, parent: string, cursor?: string) {
  return unwrap(
    await api.GET("/api/runs/{id}/sibling-sets", { params: { path: { id }, query: { parent, cursor, limit: 50 } } }),
  );
}

export async function fetchTokens(id: string, filter: TokenFilter) {
  return unwrap(await api.GET("/api/runs/{id}/tokens", { params: { path: { id }, query: { limit: 50, ...filter } } }));
}

export async function fetchToken(id: string, tokenId: string) {
  return unwrap(await api.GET("/api/runs/{id}/tokens/{token_id}", { params: { path: { id, token_id: tokenId } } }));
}

export async function fetchBundle(workflowId: string, version: number) {
  return unwrap(
    await api.GET("/api/workflow-defs/{workflow}", { params: { path: { workflow: workflowId }, query: { version } } }),
  );
}

export async function cancelRun(id: string) {
  // No body: the reason is optional, and a JSON `null` is not an object.
  return unwrap(await api.POST("/api/runs/{id}/cancel", { params: { path: { id } } }));
}

/** Numeric order of `tk_<n>` ids (string order puts tk_10 before tk_2). */
export function tokenOrder(a: { id: string }, b: { id: string }): number {
  return Number(a.id.slice(3)) - Number(b.id.slice(3)) || a.id.localeCompare(b.id);
}
