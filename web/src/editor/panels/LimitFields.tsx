// A model profile's provider limits (SPEC §4): `max_concurrency` and
// `rate_limit: { requests_per_minute, tokens_per_minute }`. They belong to
// the endpoint (provider, base_url, model, key variable), shared by every
// run and version; an empty field means the default (16 in flight) or no
// limit. Whole numbers ≥ 1, checked as typed and by the server at save.
import { setOrDelete } from "../model/edit";
import type { ModelProfile } from "../model/types";
import { NumberField } from "./fields";

type RateLimit = NonNullable<ModelProfile["rate_limit"]>;

/** The message for a limit that is not a whole number ≥ 1. */
export function limitProblem(field: string, v: number): string | undefined {
  return Number.isInteger(v) && v >= 1 ? undefined : `${field} must be a whole number of at least 1 (leave it empty for no limit)`;
}

export function LimitFields({ profile, onEdit }: { profile: ModelProfile; onEdit: (change: (p: ModelProfile) => void) => void }) {
  const rate = profile.rate_limit ?? {};
  const setRate = (key: keyof RateLimit, v: number | undefined) =>
    onEdit((p) => {
      const next: RateLimit = { ...(p.rate_limit ?? {}) };
      setOrDelete(next, key, v);
      // No limit left: no `rate_limit` at all (what the server writes back).
      setOrDelete(p, "rate_limit", Object.keys(next).length > 0 ? next : undefined);
    });
  return (
    <div className="flex flex-col gap-2 rounded border border-slate-200 bg-white p-2" data-testid="model-profile-limits">
      <p className="text-[11px] leading-snug text-slate-500">Limits of the endpoint, shared by every run and version that calls it.</p>
      <NumberField
        label="max_concurrency"
        field="model_profile:max_concurrency"
        min={1}
        value={profile.max_concurrency}
        hint="calls in flight; empty: 16"
        validate={(v) => limitProblem("max_concurrency", v)}
        onChange={(v) => onEdit((p) => setOrDelete(p, "max_concurrency", v))}
      />
      <NumberField
        label="rate_limit.requests_per_minute"
        field="model_profile:rate_limit.requests_per_minute"
        min={1}
        value={rate.requests_per_minute}
        hint="a minute, a burst of as many; empty: no limit"
        validate={(v) => limitProblem("requests_per_minute", v)}
        onChange={(v) => setRate("requests_per_minute", v)}
      />
      <NumberField
        label="rate_limit.tokens_per_minute"
        field="model_profile:rate_limit.tokens_per_minute"
        min={1}
        value={rate.tokens_per_minute}
        hint="prompt and completion tokens a minute; empty: no limit"
        validate={(v) => limitProblem("tokens_per_minute", v)}
        onChange={(v) => setRate("tokens_per_minute", v)}
      />
    </div>
  );
}
