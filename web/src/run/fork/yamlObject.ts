// One definition object (a prompt spec, a model profile, an action) as YAML
// text and back, with the editor's YAML settings (YAML 1.2 core schema, as
// the server reads it). Parsing names the line of a syntax error and checks
// that the object keeps its ref: a fork's changes replace objects by ref.
import { parseDocument, stringify } from "yaml";

export function objectToYaml(value: unknown): string {
  return stringify(value, { version: "1.2", lineWidth: 0, aliasDuplicateObjects: false });
}

export type ObjectParse<T> = { ok: true; value: T } | { ok: false; error: string };

export function yamlToObject<T extends { ref: string }>(text: string, ref: string): ObjectParse<T> {
  const doc = parseDocument(text, { version: "1.2", prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0].line;
    // The message repeats the position ("… at line 5, column 1:"): say it once, first.
    const message = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    return { ok: false, error: `${line ? `line ${line}: ` : ""}${message}` };
  }
  const value: unknown = doc.toJS();
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "must be a mapping" };
  const got = (value as { ref?: unknown }).ref;
  if (got !== ref) return { ok: false, error: `\`ref\` must stay \`${ref}\` (a change replaces the object with the same ref)` };
  return { ok: true, value: value as T };
}

/** Equal as JSON values, key order aside. */
export function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}
