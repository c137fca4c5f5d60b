// What canvas boxes and edges read besides their own data: the save problems
// placed on them. Kept out of node.data so the graph stays a pure function of
// the bundle (STYLE: selection and status are read per id, never written in).
import { createContext, useContext } from "react";
import { NO_PROBLEMS, type PlacedProblems } from "../model/problems";

export const ProblemsContext = createContext<PlacedProblems>(NO_PROBLEMS);

export function useNodeProblems(ref: string) {
  return useContext(ProblemsContext).byNode.get(ref);
}

export function useEdgeProblems(index: number) {
  return useContext(ProblemsContext).byEdge.get(index);
}
