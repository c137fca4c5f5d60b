// Run-view checks shared by the browser tests (runs.spec.ts and the
// editor's new-user story): open a run, watch it reach a status live,
// compare the page's totals with the API, and read a visit's inspector.
import { expect, type Page } from "@playwright/test";
import type { Braid } from "./harness";

type Usage = { llm_calls: number; input_tokens: number; output_tokens: number; cost_usd: number };
type ApiRun = { id: string; status: string; usage: Usage; usage_total: Usage; children: string[]; error: { code: string } | null };

/** Opens `/runs/<id>` and waits for the run view of that run. */
export async function openRun(page: Page, runId: string): Promise<void> {
  await page.goto(`/runs/${runId}`);
  await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", runId);
}

/** Waits (without reloading) until the header shows `status`, in its colour. */
export async function expectRunStatus(page: Page, status: "running" | "completed" | "failed" | "cancelled"): Promise<void> {
  const badge = page.getByTestId("run-status").locator("[data-status]");
  await expect(badge).toHaveAttribute("data-status", status, { timeout: 20_000 });
  const colour: Record<string, string> = {
    running: "rgb(37, 99, 235)",
    completed: "rgb(22, 163, 74)",
    failed: "rgb(220, 38, 38)",
    cancelled: "rgb(107, 114, 128)",
  };
  await expect(badge).toHaveCSS("color", colour[status]);
}

/** The usage a header block shows, read from its data attributes and text. */
async function shownUsage(page: Page, testId: string): Promise<{ calls: string; tokens: string; cost: number }> {
  const block = page.getByTestId(testId);
  return {
    calls: (await block.locator("[data-field=llm_calls]").innerText()).trim(),
    tokens: (await block.locator("[data-field=tokens]").innerText()).trim(),
    cost: Number(await block.locator("[data-field=cost_usd]").getAttribute("data-value")),
  };
}

function expected(u: Usage) {
  const n = (x: number) => x.toLocaleString("en-US");
  return { calls: `${n(u.llm_calls)} ${u.llm_calls === 1 ? "call" : "calls"}`, tokens: `${n(u.input_tokens)} in / ${n(u.output_tokens)} out`, cost: u.cost_usd };
}

/**
 * The run's totals on the page equal the API's `usage` (this run) and, when
 * it has child runs, `usage_total` (with them). Call once the run ended.
 */
export async function expectTotalsMatchApi(page: Page, braid: Braid, runId: string): Promise<ApiRun> {
  const run = (await braid.run(runId)) as unknown as ApiRun;
  await expect.poll(() => shownUsage(page, "run-usage")).toEqual(expected(run.usage));
  if (run.children.length > 0) {
    await expect.poll(() => shownUsage(page, "run-usage-total")).toEqual(expected(run.usage_total));
  } else {
    await expect(page.getByTestId("run-usage-total")).toHaveCount(0);
  }
  return run;
}

/** Clicks a node on the graph and opens its `nth` visit in the inspector. */
export async function inspectVisit(page: Page, node: string, nth = 0): Promise<void> {
  await page.getByTestId(`run-node-${node}`).click();
  const visits = page.getByTestId("node-visits");
  await expect(visits).toHaveAttribute("data-node", node);
  const row = visits.getByTestId("token-row").nth(nth);
  const token = await row.getAttribute("data-token");
  await row.click();
  await expect(page.getByTestId("inspector")).toHaveAttribute("data-token", token!);
}

/**
 * The inspector shows an LLM call: the rendered prompt, the raw response,
 * the tokens and the cost of its last attempt.
 */
export async function expectLlmInspector(
  page: Page,
  want: { prompt: string | RegExp; response: string | RegExp; inputTokens: number; outputTokens: number; costUsd: number },
): Promise<void> {
  const inspector = page.getByTestId("inspector");
  const last = inspector.getByTestId("attempt").last();
  await expect(last).toHaveAttribute("data-outcome", "completed");
  await expect(last.getByTestId("llm-messages")).toContainText(want.prompt);
  await expect(last.getByTestId("llm-response")).toContainText(want.response);
  const tokens = last.getByTestId("llm-tokens");
  await expect(tokens).toHaveAttribute("data-input", String(want.inputTokens));
  await expect(tokens).toHaveAttribute("data-output", String(want.outputTokens));
  const cost = Number(await last.getByTestId("llm-cost").getAttribute("data-value"));
  expect(cost).toBeCloseTo(want.costUsd, 10);
}
