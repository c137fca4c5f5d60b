// Placeholder: replaced by the real page.
export function RunViewPage() {
  return <div className="p-6 text-slate-500">RunView</div>;
}
