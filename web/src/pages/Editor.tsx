// Placeholder: replaced by the real page.
export function EditorPage() {
  return <div className="p-6 text-slate-500">Editor</div>;
}
