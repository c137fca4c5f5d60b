// The run input form, generated from the workflow's input_schema by rjsf.
// Loaded lazily (rjsf and ajv weigh more than the rest of the editor). The
// server checks the input again: its INPUT_SCHEMA errors are put on the
// fields they name (JSON Pointers become rjsf's error schema).
import { useState } from "react";
import Form from "@rjsf/core";
import type { ErrorSchema, IconButtonProps, RJSFSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import { ArrowDown, ArrowUp, Copy, Plus, Trash2, X, type LucideIcon } from "lucide-react";
import { useNavigate } from "@tanstack/react-router";
import { api } from "../../api/client";
import "./run-form.css";

type Input = Record<string, unknown>;
const validator = customizeValidator<Input>();

function iconButton(Icon: LucideIcon, label: string) {
  return function IconButton({ onClick, disabled, className }: IconButtonProps<Input>) {
    return (
      <button type="button" aria-label={label} title={label} onClick={onClick} disabled={disabled} className={`rjsf-icon ${className ?? ""}`}>
        <Icon size={13} />
      </button>
    );
  };
}

const ButtonTemplates = {
  AddButton: iconButton(Plus, "Add"),
  CopyButton: iconButton(Copy, "Copy"),
  MoveDownButton: iconButton(ArrowDown, "Move down"),
  MoveUpButton: iconButton(ArrowUp, "Move up"),
  RemoveButton: iconButton(Trash2, "Remove"),
  ClearButton: iconButton(X, "Clear"),
};

/** `/a/0/b` → `{ a: { 0: { b: { __errors: [msg] } } } }`. */
export function pointerErrors(errors: { path: string; message: string }[]): ErrorSchema<Input> {
  const root: Record<string, unknown> = {};
  for (const { path, message } of errors) {
    let at = root;
    for (const raw of path.split("/").slice(1)) {
      const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      at = (at[key] ??= {}) as Record<string, unknown>;
    }
    ((at.__errors ??= []) as string[]).push(message);
  }
  return root as ErrorSchema<Input>;
}

type Props = { workflow: string; version: number; schema: unknown; onCancel: () => void };

export default function RunForm({ workflow, version, schema, onCancel }: Props) {
  const navigate = useNavigate();
  const [formData, setFormData] = useState<Input>({});
  const [extraErrors, setExtraErrors] = useState<ErrorSchema<Input>>();
  const [failure, setFailure] = useState<string>();
  const [busy, setBusy] = useState(false);
  const rjsfSchema = (schema && typeof schema === "object" ? schema : { type: "object" }) as RJSFSchema;
  const noInput = !rjsfSchema.properties || Object.keys(rjsfSchema.properties).length === 0;
  // The stored schema comes back with its keys sorted: put the required fields first.
  const uiSchema = { "ui:order": [...(Array.isArray(rjsfSchema.required) ? rjsfSchema.required : []), "*"] };

  const submit = async (input: Input) => {
    setBusy(true);
    setFailure(undefined);
    setExtraErrors(undefined);
    const { data, error, response } = await api.POST("/api/workflow-defs/{workflow}/runs", {
      params: { path: { workflow } },
      body: { input, version },
    });
    setBusy(false);
    if (data && "run_id" in data) {
      void navigate({ to: "/runs/$id", params: { id: data.run_id } });
      return;
    }
    const body = error as { error?: { code?: string; message?: string; details?: { errors?: { path: string; message: string }[] } } } | undefined;
    if (body?.error?.code === "INPUT_SCHEMA" && body.error.details?.errors) setExtraErrors(pointerErrors(body.error.details.errors));
    setFailure(body?.error?.message ?? `HTTP ${response.status}`);
  };

  return (
    <div className="rjsf-form" data-testid="run-form">
      <Form<Input>
        schema={rjsfSchema}
        uiSchema={uiSchema}
        validator={validator}
        formData={formData}
        onChange={(e) => setFormData(e.formData ?? {})}
        onSubmit={(e) => void submit(e.formData ?? {})}
        extraErrors={extraErrors}
        showErrorList={false}
        noHtml5Validate
        // The errors are shown on the fields; without a handler rjsf logs them as a console error.
        onError={() => setFailure(undefined)}
        templates={{ ButtonTemplates }}
        disabled={busy}
      >
        {noInput && <p className="mb-3 text-[12px] text-slate-500">This workflow declares no input fields (no `input_schema` properties): it starts with `{}`.</p>}
        {failure && (
          <p role="alert" className="mb-3 rounded border border-red-200 bg-red-50 px-2 py-1.5 text-[12px] text-red-700">
            {failure}
          </p>
        )}
        <div className="flex justify-end gap-2">
          <button type="button" className="rounded border border-slate-300 bg-white px-3 py-1.5 text-[13px] font-medium text-slate-700 hover:bg-slate-50" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" disabled={busy} className="rounded bg-blue-600 px-3 py-1.5 text-[13px] font-medium text-white hover:bg-blue-700 disabled:opacity-60">
            {busy ? "Starting…" : `Start run (v${version})`}
          </button>
        </div>
      </Form>
    </div>
  );
}
