// Read-only JSON in a scrolling monospace block, for inputs, results and
// raw responses. Strings are shown as text (prompts read better unquoted).
import clsx from "clsx";

export function JsonBlock({ value, className, testId }: { value: unknown; className?: string; testId?: string }) {
  const text = value === undefined || value === null ? "null" : typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return (
    <pre
      data-testid={testId}
      className={clsx(
        "max-h-64 overflow-auto rounded border border-slate-200 bg-slate-50 px-2 py-1.5 font-mono text-[11px] leading-relaxed whitespace-pre-wrap break-words text-slate-800",
        className,
      )}
    >
      {text}
    </pre>
  );
}
