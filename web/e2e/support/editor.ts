// Driving the workflow editor like a user: palette drags, handle-to-handle
// connections, panel fields; and the new user's story from an empty server
// to a completed run (`newUserStory`), for the editor's tests and for any
// test that wants to continue from the run view.
import { expect, type Locator, type Page } from "@playwright/test";
import type { ConsoleErrors } from "../harness";
import type { Braid, RunBody } from "./braid";
import type { LlmServer } from "./llm";

/** Drops a palette item (`update_context`, `llm_call`, `join`, …) at a point of the canvas. */
export async function dragFromPalette(page: Page, item: string, at: { x: number; y: number }): Promise<void> {
  await page.getByTestId(`palette-${item}`).dragTo(page.getByTestId("canvas"), { targetPosition: at });
}

/** Draws an edge from `from`'s bottom handle to `to`'s top handle with the mouse. */
export async function connect(page: Page, from: string, to: string): Promise<void> {
  const source = await page.getByTestId(`node-${from}`).locator(".react-flow__handle.source").boundingBox();
  const target = await page.getByTestId(`node-${to}`).locator(".react-flow__handle.target").boundingBox();
  if (!source || !target) throw new Error(`handles of ${from} or ${to} not on screen`);
  await page.mouse.move(source.x + source.width / 2, source.y + source.height / 2);
  await page.mouse.down();
  // React Flow starts a connection only once the pointer has moved a little.
  await page.mouse.move(source.x + 8, source.y + 24, { steps: 4 });
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2, { steps: 8 });
  await page.mouse.up();
}

export function nodePanel(page: Page): Locator {
  return page.getByTestId("node-panel");
}

export function edgePanel(page: Page): Locator {
  return page.getByTestId("edge-panel");
}

export async function save(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Save", exact: true }).click();
}

/** The editor's save outcome line ("version 2 saved", "unchanged (version 1)", "1 problem: not saved"). */
export function saveStatus(page: Page): Locator {
  return page.getByTestId("save-status");
}

/** Sets the `index`-th (1-based) row of a rows editor (`updates`, `output_mapping`…) in a panel. */
export async function setRow(panel: Locator, label: string, index: number, path: string, cel: string): Promise<void> {
  await panel.getByLabel(`${label} ${index} path`).fill(path);
  await panel.getByLabel(`${label} ${index} CEL`).fill(cel);
}

export type StoryResult = { workflow: string; runId: string; run: RunBody };

/**
 * The new user's story: from `/`, create `workflow`; drag an update_context,
 * an llm_call (model profile on `llm`) and a Join from the palette; connect
 * them with a fan-out edge (`spawn_count: 3`) and a join; set the merge in
 * the panel; save (version 1); break a CEL expression and save (the error
 * is shown on that node, nothing is saved); fix it and save (version 2);
 * run it from the form and land on `/runs/{id}`; wait through the API until
 * the run has completed with 3 LLM calls. `shot` names the screenshots.
 * With `onRunPage`, the model's answers are held from the start of the run
 * until the callback calls `release`, so it can watch the run view live.
 */
export async function newUserStory(
  page: Page,
  braid: Braid,
  llm: LlmServer,
  consoleErrors: ConsoleErrors,
  {
    workflow = "story",
    shot = async (_name: string) => {},
    onRunPage,
  }: {
    workflow?: string;
    shot?: (name: string) => Promise<unknown>;
    onRunPage?: (runId: string, release: () => void) => Promise<void>;
  } = {},
): Promise<StoryResult> {
  llm.answer((req) => ({ content: `answer ${req.index}`, usage: { prompt_tokens: 12, completion_tokens: 4 } }));

  await page.goto("/");
  await expect(page.getByTestId("workflows-empty")).toBeVisible();
  await page.getByLabel("New workflow name").fill(workflow);
  await page.getByRole("button", { name: "New workflow" }).click();
  await expect(page).toHaveURL(new RegExp(`/workflows/${workflow}$`));
  await expect(page.getByTestId("editor-version")).toHaveText("new, not saved yet");
  await expect(page.getByTestId("node-start")).toBeVisible();

  // Three nodes from the palette; the one-node start is removed with the keyboard.
  await dragFromPalette(page, "update_context", { x: 360, y: 110 });
  await expect(page.getByTestId("node-update")).toBeVisible();
  await dragFromPalette(page, "llm_call", { x: 360, y: 290 });
  await expect(page.getByTestId("node-llm")).toBeVisible();
  await dragFromPalette(page, "join", { x: 360, y: 470 });
  await expect(page.getByTestId("node-join")).toBeVisible();
  await page.getByTestId("node-start").click();
  await page.keyboard.press("Delete");
  await expect(page.getByTestId("node-start")).toHaveCount(0);

  await connect(page, "update", "llm");
  await connect(page, "llm", "join");
  await expect(page.locator(".react-flow__edge")).toHaveCount(2);

  const node = nodePanel(page);
  await page.getByTestId("node-update").click();
  await expect(node.getByText("The workflow starts here.")).toBeVisible();
  await node.getByRole("button", { name: "Add updates row" }).click();
  await setRow(node, "updates", 1, "state.topic", "'braids'");

  // The fan-out edge, reached from the node panel's list of transitions.
  await node.getByRole("button", { name: "llm", exact: true }).click();
  await edgePanel(page).getByLabel("spawn_count").fill("3");
  await expect(page.getByText("×3")).toBeVisible();
  await expect(page.getByTestId("node-update").getByText("fan-out")).toBeVisible();

  // The llm_call: its model profile on the local OpenAI-format server.
  await page.getByTestId("node-llm").click();
  await node.getByLabel("provider").selectOption("openai_compatible");
  await node.getByLabel("base_url").fill(llm.baseUrl);
  await node.getByLabel("template").fill("Write about {{state.topic}} (branch {{_branch.index}}).");
  // Prices, so that each call has a cost the run view can total.
  await node.getByLabel("$ / 1k input").fill("0.5");
  await node.getByLabel("$ / 1k output").fill("1.5");
  await node.getByRole("button", { name: "Add output_mapping row" }).click();
  await setRow(node, "output_mapping", 1, "state.answer", "result.text");

  // The join: which fan-out it closes, the merge, and what it writes.
  await page.getByTestId("node-join").click();
  await node.getByLabel("joins").selectOption("update");
  await node.getByLabel("merge source").fill("answer");
  await node.getByLabel("merge target").fill("state.answers");
  await node.getByLabel("merge strategy").selectOption("collect");
  await node.getByRole("button", { name: "Add updates row" }).click();
  await setRow(node, "updates", 1, "output.count", "size(state.answers)");
  await expect(page.getByTestId("node-join").getByText("join all ← update")).toBeVisible();
  await shot("editor-node-selected");

  await save(page);
  await expect(saveStatus(page)).toHaveText("version 1 saved");
  await expect(page.getByTestId("editor-version")).toHaveText("version 1");

  // A broken expression: shown on its node, nothing saved.
  consoleErrors.allow(/status of 422/);
  await page.getByTestId("node-update").click();
  await node.getByLabel("updates 1 CEL").fill("'braids' +");
  await save(page);
  await expect(saveStatus(page)).toHaveText("1 problem: not saved");
  await expect(page.getByTestId("node-update")).toHaveAttribute("data-invalid", "true");
  await expect(page.getByTestId("node-update").getByText("1 problem")).toBeVisible();
  await expect(node.getByTestId("panel-problems")).toContainText("updates[0].expr");
  // …and on the row it names, in red.
  await expect(node.getByRole("group", { name: "updates" }).locator('[data-invalid="true"]')).toContainText("syntax error");
  await expect(page.getByTestId("problems-list")).toContainText("update.action");
  await expect(node.getByLabel("updates 1 CEL")).toHaveValue("'braids' +");
  await shot("editor-error");
  const listed = await braid.request<{ items: { name: string; latest_version: number }[] }>("GET", "/api/workflow-defs");
  expect(listed.body.items.find((w) => w.name === workflow)?.latest_version).toBe(1);

  await node.getByLabel("updates 1 CEL").fill("'woven braids'");
  await save(page);
  await expect(saveStatus(page)).toHaveText("version 2 saved");
  await expect(page.getByTestId("node-update")).not.toHaveAttribute("data-invalid", "true");
  await expect(page.getByTestId("problems-list")).toHaveCount(0);

  // The YAML beside the canvas shows the same bundle.
  await page.getByRole("button", { name: "YAML" }).click();
  const yaml = page.getByTestId("yaml-pane");
  await expect(yaml).toContainText("spawn_count: 3");
  await expect(yaml).toContainText("strategy: collect");
  await expect(yaml).toContainText(`base_url: ${llm.baseUrl}`);
  await shot("editor-yaml");

  await page.getByRole("button", { name: "Run", exact: true }).click();
  const form = page.getByTestId("run-form");
  await expect(form).toBeVisible();
  const release = onRunPage ? llm.hold() : () => {};
  await form.getByRole("button", { name: "Start run (v2)" }).click();
  await expect(page).toHaveURL(/\/runs\/run_[0-9a-f]+$/);
  const runId = page.url().split("/runs/")[1];
  if (onRunPage) await onRunPage(runId, release);

  const run = await braid.waitForRun(runId);
  expect(run.status).toBe("completed");
  expect(run.usage).toMatchObject({ llm_calls: 3, input_tokens: 36, output_tokens: 12 });
  expect((run.context as { output: unknown }).output).toEqual({ count: 3 });
  expect(llm.total).toBe(3);
  expect(llm.requests.map((r) => r.messages.at(-1)?.content).sort()).toEqual([0, 1, 2].map((i) => `Write about woven braids (branch ${i}).`));
  return { workflow, runId, run };
}
