// The last save's problems by field, for the panel showing them: a control
// whose `field` (`<kind>:<field path>`, e.g. `action:updates[0].expr`,
// `node:merge.target`) has a problem gets a red border and the message.
import { createContext, useContext } from "react";
import type { DefinitionProblem } from "../model/types";

export const FieldProblemsContext = createContext<Map<string, string[]>>(new Map());

export function fieldProblems(problems: DefinitionProblem[] | undefined): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const p of problems ?? []) {
    const key = `${p.kind}:${p.field}`;
    map.set(key, [...(map.get(key) ?? []), p.message]);
  }
  return map;
}

export function useFieldProblem(field: string | undefined): string[] | undefined {
  const map = useContext(FieldProblemsContext);
  return field ? map.get(field) : undefined;
}
