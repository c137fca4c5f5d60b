// "New workflow": a name, then the editor with a fresh one-node bundle (not
// saved until Save). The name must be a ref-like identifier and not taken.
import { useState } from "react";
import { useNavigate } from "@tanstack/react-router";
import { Plus } from "lucide-react";

const NAME = /^[a-z][a-z0-9_]*$/;

export function NewWorkflow({ taken }: { taken: string[] }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const problem = name === "" ? undefined : !NAME.test(name) ? "lower case letters, digits and _, starting with a letter" : taken.includes(name) ? "a workflow with this name exists" : undefined;
  return (
    <form
      className="flex items-start gap-2"
      onSubmit={(e) => {
        e.preventDefault();
        if (name && !problem) void navigate({ to: "/workflows/$name", params: { name } });
      }}
    >
      <div>
        <input
          aria-label="New workflow name"
          placeholder="new_workflow_name"
          className="h-8 w-56 rounded border border-slate-300 bg-white px-2 font-mono text-[13px] focus:border-blue-500 focus:ring-1 focus:ring-blue-500 focus:outline-none"
          value={name}
          onChange={(e) => setName(e.target.value.trim())}
        />
        {problem && <p className="mt-1 text-[11px] text-red-600">{problem}</p>}
      </div>
      <button type="submit" disabled={!name || !!problem} className="inline-flex h-8 items-center gap-1.5 rounded bg-blue-600 px-3 text-[13px] font-medium text-white hover:bg-blue-700 disabled:opacity-50">
        <Plus size={14} /> New workflow
      </button>
    </form>
  );
}
