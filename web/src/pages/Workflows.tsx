// Placeholder: replaced by the real page.
export function WorkflowsPage() {
  return <div className="p-6 text-slate-500">Workflows</div>;
}
