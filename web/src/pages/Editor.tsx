// The Editor page (`/workflows/$name`, `?version=N`): loads the bundle and
// hands it to the editor. A workflow that does not exist yet opens as a
// fresh one-node bundle, saved only when the user saves it.
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { editorRoute } from "../router";
import { EditorView } from "../editor/EditorView";
import { newBundle } from "../editor/model/edit";
import type { Bundle } from "../editor/model/types";

type Loaded = { bundle: Bundle; version: number | undefined };

async function load(name: string, version: number | undefined): Promise<Loaded> {
  // Asking the list first keeps a new name from showing up as a failed request (a console error).
  if (!version) {
    const list = await api.GET("/api/workflow-defs", { params: { query: { limit: 1000 } } });
    // Only a complete list proves absence (past one page, ask for the bundle itself).
    if (list.data?.next_cursor === null && !list.data.items.some((w) => w.name === name)) return { bundle: newBundle(name), version: undefined };
  }
  const { data, error, response } = await api.GET("/api/workflow-defs/{workflow}", {
    params: { path: { workflow: name }, query: version ? { version } : {} },
  });
  if (data) return { bundle: data, version: Number(response.headers.get("x-braid-version")) || version };
  if (response.status === 404 && !version) return { bundle: newBundle(name), version: undefined };
  const message = (error as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${response.status}`;
  throw new Error(message);
}

export function EditorPage() {
  const { name } = editorRoute.useParams();
  const { version } = editorRoute.useSearch();
  // Loaded once per workflow and version: later server changes must not replace what is being edited.
  const query = useQuery({ queryKey: ["editor-bundle", name, version], queryFn: () => load(name, version), staleTime: Infinity, gcTime: 0, retry: false });
  if (query.isPending) return <p className="p-6 text-[13px] text-slate-500">Loading {name}…</p>;
  if (query.isError)
    return (
      <p role="alert" className="p-6 text-[13px] text-red-700">
        Could not open {name}: {query.error.message}
      </p>
    );
  return <EditorView key={`${name}@${query.data.version ?? "new"}`} initial={query.data.bundle} version={query.data.version} />;
}
