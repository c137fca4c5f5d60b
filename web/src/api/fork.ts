// Fork and compare (SPEC §5a): `POST /api/runs/{id}/fork` and
// `GET /api/runs/{a}/compare/{b}`, with the types of the generated schema.
import { api, type Schemas } from "./client";

export type ForkFrom = Schemas["ForkFrom"];
/** Objects of the target version replaced by `ref` (SPEC §5a). */
export type ForkChanges = Schemas["ForkChanges"];
export type ForkRequest = Schemas["ForkRequest"];
/** 201 of the fork: the new run and the version it runs (an experiment when changed). */
export type ForkResponse = Schemas["ForkCreated"];
/** A run's `forked_from`: the source run and the seq the copied history ends at. */
export type ForkedFrom = Schemas["ForkedFrom"];
/** One run's side of a visit. */
export type CompareSide = Schemas["VisitSide"];
/** A node visit lined up across both runs (by node, branch index path and occurrence). */
export type CompareVisit = Schemas["ComparedVisit"];
export type CompareTotals = Schemas["SideTotals"];
export type Comparison = Schemas["RunComparison"];

/** The `forked_from` of a run body (null for a run that was not forked). */
export function forkedFrom(run: { forked_from?: ForkedFrom | null }): ForkedFrom | null {
  return run.forked_from ?? null;
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

function failure(error: unknown, response: Response): ApiFailure {
  const e = (error as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
  return new ApiFailure(response.status, e?.code, e?.message ?? `HTTP ${response.status}`, e?.details);
}

export async function forkRun(runId: string, request: ForkRequest): Promise<ForkResponse> {
  const { data, error, response } = await api.POST("/api/runs/{id}/fork", { params: { path: { id: runId } }, body: request });
  if (data === undefined) throw failure(error, response);
  return data;
}

export async function fetchComparison(a: string, b: string): Promise<Comparison> {
  const { data, error, response } = await api.GET("/api/runs/{a}/compare/{b}", { params: { path: { a, b } } });
  if (data === undefined) throw failure(error, response);
  return data;
}
