// What canvas boxes and edges read besides their own data: the save problems
// (and warnings) placed on them. Kept out of node.data so the graph stays a pure function of
// the bundle (STYLE: selection and status are read per id, never written in).
import { createContext, useContext } from "react";
import { NO_PROBLEMS, type PlacedProblems } from "../model/problems";

/** The last save's errors (it was refused) and warnings (it was accepted). */
export type Findings = { errors: PlacedProblems; warnings: PlacedProblems };

export const ProblemsContext = createContext<Findings>({ errors: NO_PROBLEMS, warnings: NO_PROBLEMS });

export function useNodeProblems(ref: string) {
  const { errors, warnings } = useContext(ProblemsContext);
  return { errors: errors.byNode.get(ref), warnings: warnings.byNode.get(ref) };
}

export function useEdgeProblems(index: number) {
  const { errors, warnings } = useContext(ProblemsContext);
  return { errors: errors.byEdge.get(index), warnings: warnings.byEdge.get(index) };
}
