// Fork and compare in the browser (SPEC §5a) against the real `braid serve`
// and a local OpenAI-format server: *Fork from here* in the node inspector
// with a changed prompt, the forked run's header, *Compare with…* and the
// compare view; the fork dialog's errors (bad YAML, FORK_INCOMPATIBLE).
import { expect, screenshot, test, type Braid, type LlmServer } from "./harness";
import { expectRunStatus, inspectVisit, openRun } from "./runview";
import type { Page } from "@playwright/test";

const usage = { prompt_tokens: 20, completion_tokens: 5 };

/** prep → draft → polish: two LLM calls, the second one's prompt is what the tests change. */
function review(baseUrl: string, withDraft = true) {
  const llm = (prompt: string) => ({ kind: "llm_call", prompt, model: "local" });
  return {
    name: "review",
    initial_node: "prep",
    nodes: [
      { ref: "prep", action: { kind: "update_context", updates: [{ path: "state.topic", expr: "input.topic" }] } },
      ...(withDraft ? [{ ref: "draft", action: llm("draft_prompt"), output_mapping: { "state.draft": "result.text" } }] : []),
      { ref: "polish", action: llm("polish_prompt"), output_mapping: { "output.text": "result.text" } },
    ],
    transitions: withDraft
      ? [
          { from: "prep", to: "draft" },
          { from: "draft", to: "polish" },
        ]
      : [{ from: "prep", to: "polish" }],
    prompt_specs: [
      { ref: "draft_prompt", template: "Draft a note about {{state.topic}}." },
      { ref: "polish_prompt", system: "You are an editor.", template: "Polish this: {{state.draft}}" },
    ],
    model_profiles: [
      {
        ref: "local",
        provider: "openai_compatible",
        base_url: baseUrl,
        model: "writer",
        cost_per_1k_input_tokens: 0.5,
        cost_per_1k_output_tokens: 1.5,
      },
    ],
  };
}

/** Drafts are fixed; a polish answers by its instruction, so a changed prompt changes only that visit. */
function answerWriters(llm: LlmServer) {
  llm.answer((req) => {
    const text = req.messages.map((m) => m.content).join("\n");
    if (text.startsWith("Draft")) return { content: "a rough note about braids", usage };
    if (text.includes("Shorten")) return { content: "Braids: short.", usage };
    return { content: "A polished note about braids.", usage };
  });
}

/** A completed source run of `review`, opened at its `polish` visit with the fork dialog open. */
async function openForkDialog(page: Page, braid: Braid, llm: LlmServer) {
  answerWriters(llm);
  await braid.saveBundle(review(llm.baseUrl));
  const source = await braid.runToEnd("review", { topic: "braids" });
  expect(source.status).toBe("completed");
  expect(llm.total).toBe(2);
  await openRun(page, source.id);
  await expectRunStatus(page, "completed");
  await inspectVisit(page, "polish", 0);
  await page.getByTestId("inspector").getByRole("button", { name: "Fork from here" }).click();
  const dialog = page.getByTestId("fork-dialog");
  await expect(dialog).toBeVisible();
  return { source, dialog };
}

test("fork from the inspector with a changed prompt: the new run completes and compares with its source", async ({ page, braid, llm }) => {
  const { source, dialog } = await openForkDialog(page, braid, llm);
  // The node's action as it is, its prompt spec and model profile to edit.
  await expect(dialog.getByTestId("fork-piece-action")).toContainText("kind: llm_call");
  const prompt = dialog.getByTestId("fork-piece-prompt").locator("textarea");
  await expect(prompt).toHaveValue(/template: "Polish this: \{\{state\.draft\}\}"/);
  await expect(dialog.getByTestId("fork-piece-model").locator("textarea")).toHaveValue(/model: writer/);
  await prompt.fill((await prompt.inputValue()).replace("Polish this", "Shorten this"));
  await expect(dialog.getByTestId("fork-summary")).toHaveText("Changed: prompt spec");
  await screenshot(page, "fork-dialog");
  await dialog.getByRole("button", { name: "Fork and run" }).click();

  // The new run opens, runs only `polish` live and completes.
  await expect(page).not.toHaveURL(new RegExp(source.id));
  await expect(page).toHaveURL(/\/runs\/run_[0-9a-z]+$/);
  const forkId = page.url().split("/runs/")[1];
  await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", forkId);
  await expectRunStatus(page, "completed");
  const fork = (await braid.waitForRun(forkId)) as unknown as {
    forked_from: { run_id: string; seq: number };
    usage: { llm_calls: number };
    context: { output: { text: string } };
    workflow: { version: number };
  };
  expect(fork.forked_from.run_id).toBe(source.id);
  expect(fork.usage.llm_calls).toBe(1);
  expect(fork.context.output.text).toBe("Braids: short.");
  expect(fork.workflow.version).toBe(2);
  expect(llm.total).toBe(3);
  expect(llm.requests[2].messages.map((m) => m.content).join("\n")).toContain("Shorten this: a rough note about braids");
  const forkedFrom = page.getByTestId("forked-from");
  await expect(forkedFrom).toContainText(`at seq ${fork.forked_from.seq}`);
  await expect(forkedFrom.getByRole("link")).toHaveAttribute("href", `/runs/${source.id}`);
  await screenshot(page, "fork-new-run");

  // Compare with…: the fork source is first and picked; the older run is A.
  await page.getByRole("button", { name: "Compare with…" }).click();
  const picker = page.getByTestId("compare-picker");
  const candidate = picker.getByTestId("compare-candidate").first();
  await expect(candidate).toHaveAttribute("data-run", source.id);
  await expect(candidate).toHaveAttribute("aria-selected", "true");
  await expect(candidate).toContainText("fork source");
  await picker.getByTestId("compare-go").click();
  await expect(page).toHaveURL(new RegExp(`/runs/${source.id}/compare/${forkId}$`));

  // One visit differs, marked as the first difference; the others are equal.
  const view = page.getByTestId("compare-view");
  await expect(view.getByTestId("compare-summary")).toHaveText("3 visits · 1 different");
  const rows = view.getByTestId("compare-row");
  await expect(rows).toHaveCount(3);
  await expect(view.locator("[data-testid=compare-row][data-equal=true]")).toHaveCount(2);
  const different = view.locator("[data-testid=compare-row][data-equal=false]");
  await expect(different).toHaveCount(1);
  await expect(different).toHaveAttribute("data-node", "polish");
  await expect(different).toHaveAttribute("data-first-difference", "true");
  await expect(different.getByTestId("equal-badge")).toHaveText("≠ different");
  await expect(different.getByTestId("compare-a")).toContainText("A polished note about braids.");
  await expect(different.getByTestId("compare-b")).toContainText("Braids: short.");
  await expect(different).toBeInViewport();
  // Visibly distinct: the different row's badge is amber, an equal one's is not.
  const background = (row: typeof different) => row.getByTestId("equal-badge").evaluate((e) => getComputedStyle(e).backgroundColor);
  const equalRow = view.locator("[data-testid=compare-row][data-equal=true]").first();
  expect(await background(different)).not.toBe(await background(equalRow));
  // The totals: the source paid for two calls, the fork for one.
  await expect(view.getByTestId("compare-run-a").locator("[data-field=llm_calls]")).toHaveText("2");
  await expect(view.getByTestId("compare-run-b").locator("[data-field=llm_calls]")).toHaveText("1");
  await expect(view.getByTestId("compare-run-b")).toContainText(`forked from`);
  await screenshot(page, "compare-view");

  await view.getByTestId("only-differences").check();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute("data-node", "polish");
  await screenshot(page, "compare-only-differences");
});

test("the fork dialog shows a YAML error, FORK_INCOMPATIBLE and INVALID_DEFINITION, keeping what was typed", async ({ page, braid, llm, consoleErrors }) => {
  const { source, dialog } = await openForkDialog(page, braid, llm);
  // Version 2 has no `draft`, which the copied history visited.
  await braid.saveBundle(review(llm.baseUrl, false));
  const prompt = dialog.getByTestId("fork-piece-prompt").locator("textarea");
  const edited = (await prompt.inputValue()).replace("Polish this", "Shorten this");

  // Bad YAML: shown under its text area with the line; nothing is sent.
  await prompt.fill(`${edited}produces: { type: object\n`);
  await expect(dialog.getByTestId("fork-yaml-error")).toContainText(/line \d+:/);
  await dialog.getByRole("button", { name: "Fork and run" }).click();
  await expect(dialog.getByTestId("fork-yaml-problem")).toContainText("Fix the YAML of the prompt spec first");
  await expect(prompt).toHaveAttribute("aria-invalid", "true");
  await screenshot(page, "fork-dialog-yaml-error");
  // Escape does not throw typed edits away.
  await page.keyboard.press("Escape");
  await expect(dialog).toBeVisible();

  // Fixed YAML, a target version the history does not fit: the server's refusal in the dialog.
  await prompt.fill(edited);
  await expect(dialog.getByTestId("fork-yaml-error")).toHaveCount(0);
  await dialog.getByTestId("fork-version").fill("2");
  consoleErrors.allow(/status of 422/);
  await dialog.getByRole("button", { name: "Fork and run" }).click();
  const error = dialog.getByTestId("fork-error");
  await expect(error).toContainText("FORK_INCOMPATIBLE");
  await expect(error).toContainText("draft");
  await screenshot(page, "fork-dialog-incompatible");
  // Nothing lost, nothing started: the dialog, the text and the source run's page stay.
  await expect(prompt).toHaveValue(edited);
  await expect(dialog.getByTestId("fork-version")).toHaveValue("2");
  await expect(page).toHaveURL(new RegExp(`/runs/${source.id}$`));
  // A change that does not validate: the save's problems, listed in the dialog.
  await dialog.getByTestId("fork-version").fill("");
  const profile = dialog.getByTestId("fork-piece-model").locator("textarea");
  await profile.fill(`${await profile.inputValue()}max_concurrency: 0\n`);
  await dialog.getByRole("button", { name: "Fork and run" }).click();
  await expect(error).toContainText("INVALID_DEFINITION");
  await expect(error).toContainText("model_profile `local`, field `max_concurrency`: max_concurrency must be at least 1");
  await expect(dialog.getByTestId("fork-summary")).toHaveText("Changed: prompt spec, model profile");
  await screenshot(page, "fork-dialog-invalid");
  const runs = await braid.request<{ items: unknown[] }>("GET", "/api/runs?workflow=review");
  expect(runs.body.items).toHaveLength(1);
  expect(llm.total).toBe(2);
  // A refused fork saves no experiment version either.
  expect((await braid.request("GET", "/api/workflow-defs/review?version=3")).status).toBe(404);
});
