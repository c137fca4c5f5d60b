// A small pager button (previous / next / more) for paged lists.
import clsx from "clsx";

export function PageButton({
  disabled,
  onClick,
  children,
  testId,
}: {
  disabled: boolean;
  onClick: () => void;
  children: React.ReactNode;
  testId?: string;
}) {
  return (
    <button
      type="button"
      data-testid={testId}
      disabled={disabled}
      onClick={onClick}
      className={clsx("rounded border border-slate-200 bg-white px-1.5 py-px hover:bg-slate-50", disabled && "opacity-40")}
    >
      {children}
    </button>
  );
}
