// The runs list and the run view against the real `braid serve`, a real
// SQLite file and a local OpenAI-format server (e2e/harness.ts).
import { expect, screenshot, test } from "./harness";
import { judgePanel } from "./support/bundles";
import { bigFanOut, costOf, flaky, panelParent } from "./runBundles";
import { expectLlmInspector, expectRunStatus, expectTotalsMatchApi, inspectVisit, openRun } from "./runview";

const PROMPT_TOKENS = 40;
const COMPLETION_TOKENS = 8;
const usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: COMPLETION_TOKENS };
/** One judge call at the shared judge panel's prices ($0.00015 / $0.0006 per 1k tokens). */
const JUDGE_COST = (PROMPT_TOKENS * 0.00015 + COMPLETION_TOKENS * 0.0006) / 1000;

/** Judges vote A except judge 1; the announcement is plain text. */
function answerJudges(req: { messages: { role: string; content: string }[] }) {
  const text = req.messages.map((m) => m.content).join("\n");
  if (text.includes("Announce")) return { content: "A wins.", usage };
  return { content: { vote: text.includes("judge 1") ? "B" : "A" }, usage };
}

test("a fanned-out judge panel goes live to completed; the inspector shows a judge's call", async ({ page, braid, llm }) => {
  llm.answer(answerJudges);
  const release = llm.hold();
  await braid.saveBundle(judgePanel(llm.baseUrl));
  const runId = await braid.startRun("judge_panel", { question: "tea or coffee" });

  await openRun(page, runId);
  await expectRunStatus(page, "running");
  await expect.poll(() => llm.inFlight).toBe(3);
  const judge = page.getByTestId("run-node-judge");
  await expect(judge).toHaveAttribute("data-tone", "running");
  await expect(judge.locator("[data-visits=running]")).toHaveText("3");
  const set = page.getByTestId("sibling-set");
  await expect(set).toHaveCount(1);
  await expect(set.getByTestId("sibling-set-total")).toHaveText("3 branches");
  await screenshot(page, "run-running");

  release();
  await expectRunStatus(page, "completed");
  await expect(judge).toHaveAttribute("data-tone", "completed");
  await expect(page.getByTestId("run-node-tally")).toHaveAttribute("data-tone", "completed");
  await expect(set.locator("[data-count=merged]")).toContainText("3 merged");
  await expect(page.getByTestId("event-row").last()).toHaveAttribute("data-kind", "workflow_completed");
  // A token in the log opens that visit.
  await page.locator("[data-testid=event-row][data-kind=node_completed]").getByRole("button", { name: "tk_3" }).click();
  await expect(page.getByTestId("inspector")).toHaveAttribute("data-token", "tk_3");
  const run = await expectTotalsMatchApi(page, braid, runId);
  expect(run.usage.llm_calls).toBe(3);
  expect(run.usage.cost_usd).toBeCloseTo(3 * JUDGE_COST, 12);

  await inspectVisit(page, "judge", 0);
  await expectLlmInspector(page, {
    prompt: "Question: tea or coffee. You are judge 0. Answer A or B.",
    response: /"vote\\?":\s*\\?"A/,
    inputTokens: PROMPT_TOKENS,
    outputTokens: COMPLETION_TOKENS,
    costUsd: JUDGE_COST,
  });
  await expect(page.getByTestId("inspector").getByTestId("llm-provider")).toHaveText("openai_compatible");
  await expect(page.getByTestId("inspector").getByTestId("llm-model")).toHaveText("gpt-4o-mini");
  await page.getByTestId("inspector").getByTestId("llm-call").last().scrollIntoViewIfNeeded();
  await screenshot(page, "run-completed");
});

test("a parent run shows its own usage and the total with its child run, and links both ways", async ({ page, braid, llm }) => {
  llm.answer(answerJudges);
  await braid.saveBundle(judgePanel(llm.baseUrl));
  await braid.saveBundle(panelParent(llm.baseUrl));
  const parent = await braid.runToEnd("panel_parent");
  expect(parent.status).toBe("completed");

  await openRun(page, parent.id);
  await expectRunStatus(page, "completed");
  const run = await expectTotalsMatchApi(page, braid, parent.id);
  expect(run.usage.llm_calls).toBe(1);
  expect(run.usage_total.llm_calls).toBe(4);
  expect(run.children).toHaveLength(1);

  await inspectVisit(page, "call", 0);
  await page.getByTestId("child-run-link").click();
  await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", run.children[0]);
  await expectRunStatus(page, "completed");
  await expectTotalsMatchApi(page, braid, run.children[0]);
  await page.getByTestId("parent-run").click();
  await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", parent.id);
});

test("a call that fails after its retries shows the run failed, its error, and the failing attempt", async ({ page, braid, llm }) => {
  // First an outage (retried), then an answer that is not JSON at all.
  llm.answer((req) => (req.index === 0 ? { status: 503 } : { content: "<html>gateway says hi</html>", usage }));
  await braid.saveBundle(flaky(llm.baseUrl));
  const runId = await braid.startRun("flaky");
  await openRun(page, runId);

  await expectRunStatus(page, "failed");
  const api = await braid.run(runId);
  const code = (api.error as { code: string }).code;
  expect(code).toBe("BAD_RESPONSE");
  await expect(page.getByTestId("run-error")).toContainText(code);
  await expect(page.getByTestId("run-node-ask")).toHaveAttribute("data-tone", "failed");

  await inspectVisit(page, "ask", 0);
  const attempts = page.getByTestId("inspector").getByTestId("attempt");
  await expect(attempts).toHaveCount(2);
  await expect(attempts.nth(0)).toHaveAttribute("data-outcome", "retrying");
  await expect(attempts.nth(0).getByTestId("attempt-error")).toContainText("UNAVAILABLE");
  await expect(attempts.nth(1)).toHaveAttribute("data-outcome", "failed");
  await expect(attempts.nth(1).getByTestId("attempt-error")).toContainText("BAD_RESPONSE");
  await expect(attempts.nth(1).getByTestId("llm-response")).toContainText("gateway says hi");
  await page.getByTestId("filter-failed").check();
  await expect(page.getByTestId("event-row").first()).toHaveAttribute("data-kind", "node_retrying");
  await expect(page.getByTestId("event-row")).toHaveCount(3);
  await attempts.nth(1).scrollIntoViewIfNeeded();
  await screenshot(page, "run-failed");
});

test("a 10,000-branch fan-out is one group with counts, a virtualised log, and stays responsive", async ({ page, braid }) => {
  test.setTimeout(120_000);
  const branches = 10_000;
  await braid.saveBundle(bigFanOut(branches));
  const run = await braid.request<{ id: string; status: string; last_seq: number }>(
    "POST",
    "/api/workflow-defs/big_fan_out/runs?wait=true&timeout_s=100",
    { input: {} },
  );
  expect(run.body.status).toBe("completed");
  const { id, last_seq: lastSeq } = run.body;
  expect(lastSeq).toBeGreaterThan(50_000);

  await openRun(page, id);
  const set = page.getByTestId("sibling-set");
  await expect(set).toHaveCount(1);
  await expect(set.getByTestId("sibling-set-total")).toHaveText("10,000 branches");
  await expect(set.locator("[data-count=merged]")).toContainText("10,000 merged");
  await expect(page.getByTestId("run-node-work").locator("[data-visits=completed]")).toHaveText("10,000");

  // The log knows every event but holds only the rows on screen.
  const log = page.getByTestId("event-count");
  await expect(log).toHaveAttribute("data-count", String(lastSeq));
  const scroller = page.getByTestId("event-scroller");
  await expect(page.getByTestId("event-row").first()).toHaveAttribute("data-seq", "1");
  await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  const middle = Math.floor(lastSeq / 2);
  await expect(page.locator(`[data-testid=event-row][data-seq="${middle}"]`)).toBeVisible();
  await scroller.evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(page.locator(`[data-testid=event-row][data-seq="${lastSeq}"]`)).toHaveAttribute("data-kind", "workflow_completed");
  expect(await page.getByTestId("event-row").count()).toBeLessThan(100);

  // Opening the group renders one page of members, fast, measured in the page.
  const toggleMs = await page.evaluate(async () => {
    const start = performance.now();
    document.querySelector<HTMLElement>("[data-testid=sibling-set-toggle]")!.click();
    await new Promise<void>((resolve) => {
      const check = () =>
        document.querySelectorAll("[data-testid=sibling-set-members] [data-testid=token-row]").length > 0
          ? resolve()
          : requestAnimationFrame(check);
      check();
    });
    return performance.now() - start;
  });
  expect(toggleMs).toBeLessThan(2_000);
  const members = page.getByTestId("sibling-set-members").getByTestId("token-row");
  await expect(members).toHaveCount(50);
  await page.getByTestId("members-next").click();
  await expect(page.getByTestId("members-page")).toHaveText(/page 2 · tokens 51–100/);
  await expect(members).toHaveCount(50);
  expect(await page.locator("[data-testid=token-row]").count()).toBeLessThan(60);
  await members.first().click();
  await expect(page.getByTestId("inspector")).toContainText("branch 51 of 10,000");

  // Filters are the server's: one fan-in, and the events of one node.
  await page.getByTestId("filter-kind").selectOption("fan_in_completed");
  await expect(page.getByTestId("event-row")).toHaveCount(1);
  await expect(page.getByTestId("event-count")).toHaveText("1");
  await page.getByTestId("filter-kind").selectOption("");
  await page.getByTestId("filter-node").selectOption("start");
  const ofStart = await braid.request<{ items: { seq: number }[] }>("GET", `/api/runs/${id}/events?node=start&limit=100`);
  expect(ofStart.body.items.length).toBeGreaterThan(1);
  await expect(page.getByTestId("event-row")).toHaveCount(ofStart.body.items.length);
  await expect(page.getByTestId("event-row").last()).toHaveAttribute("data-seq", String(ofStart.body.items.at(-1)!.seq));
  await page.getByTestId("filter-node").selectOption("");
  // The unfiltered pages on screen are read again before the picture.
  await expect(page.getByTestId("event-row").first()).toBeVisible();
  await screenshot(page, "run-big");
});

test("the runs list updates live when a run starts and ends, with child runs marked", async ({ page, braid, llm }) => {
  llm.answer(answerJudges);
  await braid.saveBundle(judgePanel(llm.baseUrl));
  await braid.saveBundle(panelParent(llm.baseUrl));
  await braid.runToEnd("judge_panel", { question: "first" });
  await braid.saveBundle(flaky(llm.baseUrl));
  llm.answer((req) => (req.messages.some((m) => m.content.includes("verdict")) ? { status: 500 } : answerJudges(req)));
  await braid.runToEnd("flaky");

  await page.goto("/runs");
  await expect(page.getByTestId("live-state")).toHaveAttribute("data-state", "open");
  await expect(page.getByTestId("run-row")).toHaveCount(2);

  const release = llm.hold();
  const parentId = await braid.startRun("panel_parent");
  const parentRow = page.locator(`[data-testid=run-row][data-run="${parentId}"]`);
  await expect(parentRow).toHaveAttribute("data-status", "running");
  const childRow = page.locator("[data-testid=run-row][data-child=true]");
  await expect(childRow).toHaveCount(1);
  await expect(childRow).toContainText("judge_panel");
  await expect(childRow).toContainText("child of");
  await screenshot(page, "runs-list-live");
  release();
  await expect(parentRow).toHaveAttribute("data-status", "completed", { timeout: 20_000 });
  await expect(childRow).toHaveAttribute("data-status", "completed");
  await expect(parentRow.locator("[data-field=cost]")).toHaveText(`$${costOf(PROMPT_TOKENS, COMPLETION_TOKENS).toFixed(4)}`);

  // Filters live in the URL.
  await page.getByTestId("runs-filter-status").selectOption("failed");
  await expect(page).toHaveURL(/status=failed/);
  await expect(page.getByTestId("run-row")).toHaveCount(1);
  await expect(page.getByTestId("run-row")).toHaveAttribute("data-status", "failed");
  await page.reload();
  await expect(page.getByTestId("runs-filter-status")).toHaveValue("failed");
  await expect(page.getByTestId("run-row")).toHaveCount(1);
  await page.getByTestId("runs-filter-status").selectOption("");
  await page.getByTestId("runs-filter-workflow").selectOption("judge_panel");
  await expect(page.getByTestId("run-row")).toHaveCount(2);
  await page.getByTestId("runs-filter-workflow").selectOption("");
  await expect(page.getByTestId("run-row")).toHaveCount(4);
  await screenshot(page, "runs-list");

  await parentRow.click();
  await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", parentId);
});

test("a dropped live socket resumes after the last seq it saw: no gap, no duplicate", async ({ page, braid, llm }) => {
  // Judge 0 answers when `first` opens, the others when `rest` opens, so
  // the run is still running when the page reconnects.
  let openFirst = () => {};
  let openRest = () => {};
  const first = new Promise<void>((resolve) => (openFirst = resolve));
  const rest = new Promise<void>((resolve) => (openRest = resolve));
  llm.answer(async (req) => {
    const text = req.messages.map((m) => m.content).join("\n");
    await (text.includes("judge 0") ? first : rest);
    return answerJudges(req);
  });
  await braid.saveBundle(judgePanel(llm.baseUrl));
  const runId = await braid.startRun("judge_panel", { question: "tea or coffee" });

  // The page's first connection is cut after its first frame.
  const urls: string[] = [];
  const seqs: number[] = [];
  await page.routeWebSocket(/\/api\/runs\/[^/]+\/live/, (ws) => {
    urls.push(ws.url());
    const cut = urls.length === 1;
    const server = ws.connectToServer();
    server.onMessage((message) => {
      const frame = JSON.parse(String(message)) as { events?: { seq: number }[] };
      for (const e of frame.events ?? []) seqs.push(e.seq);
      ws.send(message);
      if (cut) void ws.close();
    });
  });
  await openRun(page, runId);
  await expectRunStatus(page, "running");
  await expect.poll(() => llm.inFlight).toBe(3);
  const initial = Number(new URL(urls[0]).searchParams.get("after"));
  openFirst();
  await expect.poll(() => urls.length).toBe(2);
  const resumedAfter = Number(new URL(urls[1]).searchParams.get("after"));
  expect(resumedAfter).toBeGreaterThan(initial);
  expect(resumedAfter).toBe(seqs[seqs.length - 1]);
  openRest();

  await expectRunStatus(page, "completed");
  const run = (await braid.run(runId)) as unknown as { last_seq: number };
  const expected = Array.from({ length: run.last_seq - initial }, (_, i) => initial + 1 + i);
  await expect.poll(() => seqs).toEqual(expected);
  await expect(page.getByTestId("event-count")).toHaveAttribute("data-count", String(run.last_seq));
  await expect(page.getByTestId("event-row").last()).toHaveAttribute("data-kind", "workflow_completed");
});

test("Cancel asks first, then cancels the run: grey, and Cancel is disabled", async ({ page, braid, llm }) => {
  llm.answer(answerJudges);
  llm.hold();
  await braid.saveBundle(judgePanel(llm.baseUrl));
  const runId = await braid.startRun("judge_panel", { question: "tea or coffee" });
  await openRun(page, runId);
  await expectRunStatus(page, "running");

  const cancel = page.getByRole("button", { name: "Cancel", exact: true });
  await cancel.click();
  await page.getByRole("button", { name: "Keep running" }).click();
  await expectRunStatus(page, "running");
  await cancel.click();
  await page.getByRole("button", { name: "Yes, cancel" }).click();
  await expectRunStatus(page, "cancelled");
  await expect(cancel).toBeDisabled();
  expect((await braid.run(runId)).status).toBe("cancelled");
  await expect(page.getByTestId("run-node-judge")).toHaveAttribute("data-tone", "cancelled");
  await screenshot(page, "run-cancelled");
});
