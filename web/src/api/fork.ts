// Fork and compare (SPEC §5a): `POST /api/runs/{id}/fork` and
// `GET /api/runs/{a}/compare/{b}`. The types are written here by hand until
// the server's OpenAPI document has them; then each becomes an alias of the
// generated schema (`Schemas["…"]`) and the two fetchers use `api`.
import type { Schemas } from "./client";

type PromptSpec = Schemas["PromptSpec"];
type ModelProfile = Schemas["ModelProfile"];
type ActionDef = Schemas["ActionDef"];

/** Where a fork starts: before the first visit of a node, or at an event. */
export type ForkFrom = { node: string } | { seq: number };

/** Objects of the target version replaced by `ref` (SPEC §5a). */
export type ForkChanges = {
  prompt_specs?: PromptSpec[];
  model_profiles?: ModelProfile[];
  actions?: ActionDef[];
};

export type ForkRequest = { from: ForkFrom; changes?: ForkChanges; version?: number };

/** 201 of the fork: the new run and the version it runs (an experiment when changed). */
export type ForkResponse = { run_id: string; version: number };

/** A run's `forked_from`: the source run and the seq the copied history ends at. */
export type ForkedFrom = { run_id: string; seq: number };

export type VisitUsage = { llm_calls: number; input_tokens: number; output_tokens: number; cost_usd: number };

/** One run's side of a visit. */
export type CompareSide = {
  token_id: string;
  status: string;
  output: unknown;
  duration_ms: number | null;
  usage: VisitUsage;
};

/** A node visit lined up across both runs (by node, branch index path and occurrence). */
export type CompareVisit = {
  node: string;
  branch: number[];
  occurrence: number;
  a: CompareSide | null;
  b: CompareSide | null;
  equal: boolean;
};

export type CompareTotals = VisitUsage & { duration_ms: number | null };

export type Comparison = {
  visits: CompareVisit[];
  totals: { a: CompareTotals; b: CompareTotals };
  first_difference: { node: string; branch: number[]; occurrence: number } | null;
};

/** The `forked_from` of a run body (null for a run that was not forked). */
export function forkedFrom(run: object): ForkedFrom | null {
  const f = (run as { forked_from?: ForkedFrom | null }).forked_from;
  return f && typeof f.run_id === "string" ? f : null;
}

/** An API error: the server's `{ error: { code, message, details? } }` and the status. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

async function json<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
    throw new ApiFailure(res.status, e?.code, e?.message ?? `HTTP ${res.status}`, e?.details);
  }
  return body as T;
}

export async function forkRun(runId: string, request: ForkRequest): Promise<ForkResponse> {
  const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/fork`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  return json<ForkResponse>(res);
}

export async function fetchComparison(a: string, b: string): Promise<Comparison> {
  const res = await fetch(`/api/runs/${encodeURIComponent(a)}/compare/${encodeURIComponent(b)}`);
  return json<Comparison>(res);
}
