// Helpers of the compare view: which visit is the first difference, how a
// branch path and an occurrence read.
import type { Comparison, CompareVisit } from "../../api/fork";

export function sameVisit(v: CompareVisit, at: Comparison["first_difference"]): boolean {
  return !!at && v.node === at.node && v.occurrence === at.occurrence && v.branch.length === at.branch.length && v.branch.every((x, i) => x === at.branch[i]);
}

/** The index of the first difference in `visits` (-1 when the runs agree). */
export function firstDifferenceIndex(c: Comparison): number {
  return c.first_difference ? c.visits.findIndex((v) => sameVisit(v, c.first_difference)) : -1;
}

/** `root` outside any fan-out, else the branch index path `0 › 2`. */
export function branchLabel(branch: number[]): string {
  return branch.length === 0 ? "root" : branch.join(" › ");
}

/** A stable DOM key of a visit. */
export function visitKey(v: CompareVisit): string {
  return `${v.node}|${v.branch.join(".")}|${v.occurrence}`;
}
