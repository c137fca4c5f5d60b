// One token (node visit) in the token tree or a visits list: status dot,
// node, branch index, attempts and duration; a click opens the inspector.
import clsx from "clsx";
import { elapsedMs, formatDuration } from "./format";
import type { Token } from "./queries";
import { TONE_CLASS, TOKEN_TONE } from "./status";

export function TokenRow({
  token,
  selected,
  onSelect,
  depth = 0,
}: {
  token: Token;
  selected: boolean;
  onSelect: (id: string) => void;
  depth?: number;
}) {
  const tone = TONE_CLASS[TOKEN_TONE[token.status]];
  return (
    <button
      type="button"
      data-testid="token-row"
      data-token={token.id}
      data-status={token.status}
      onClick={() => onSelect(token.id)}
      style={{ paddingLeft: 8 + depth * 14 }}
      className={clsx(
        "flex h-6 w-full items-center gap-2 pr-2 text-left text-xs hover:bg-slate-100",
        selected && "bg-blue-50 hover:bg-blue-50",
      )}
    >
      <span className={clsx("size-2 shrink-0 rounded-full", tone.dot)} title={token.status} />
      <span className="min-w-0 flex-1 truncate font-medium text-slate-800">{token.node}</span>
      <span className="w-12 shrink-0 font-mono text-[11px] text-slate-500">{token.id}</span>
      <span className="w-12 shrink-0 font-mono text-[11px] text-slate-500">
        {token.branch_index != null ? `#${token.branch_index}` : ""}
      </span>
      <span className={clsx("w-20 shrink-0 truncate text-[11px]", tone.text)}>{token.status.replace("_", " ")}</span>
      <span className="w-6 shrink-0 text-right font-mono text-[11px] text-slate-500" title="attempts">
        {token.attempts > 1 ? `${token.attempts}×` : ""}
      </span>
      <span className="w-14 shrink-0 text-right font-mono text-[11px] whitespace-nowrap text-slate-500">
        {formatDuration(elapsedMs(token.started_at, token.ended_at))}
      </span>
    </button>
  );
}
