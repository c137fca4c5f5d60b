// The typed API client. Types come from schema.d.ts, generated from the
// server's OpenAPI document (`npm run gen:api`); never write them by hand.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export const api = createClient<paths>({ baseUrl: "" });

export type Schemas = components["schemas"];

/** The server's error body: `{ error: { code, message, details? } }`. */
export type ApiError = Schemas["ErrorBody"];

/** Throws the server's error (or a generic one) so React Query sees a failure. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined) {
    const body = result.error as { error?: { code?: string; message?: string } } | undefined;
    const message = body?.error?.message ?? `HTTP ${result.response.status}`;
    throw Object.assign(new Error(message), { status: result.response.status, body: result.error });
  }
  return result.data;
}

/** The WebSocket URL for an API path on the page's own server. */
export function wsUrl(path: string): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}${path}`;
}
