// Placeholder: replaced by the real page.
export function RunsPage() {
  return <div className="p-6 text-slate-500">Runs</div>;
}
