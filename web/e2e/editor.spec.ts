// The Workflows page and the editor against the real `braid serve`: the new
// user's story up to a completed run, and a bundle saved through the API
// opening laid out and saving back unchanged, with YAML and canvas in step.
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, screenshot, test } from "./harness";
import { edgePanel, nodePanel, save, saveStatus } from "./support/editor";
import { newUserStory } from "./support/editor";
import { expectLlmInspector, expectRunStatus, expectTotalsMatchApi, inspectVisit } from "./runview";
import { judgePanel } from "./support/bundles";

const here = path.dirname(fileURLToPath(import.meta.url));

test("a new user builds a fan-out with a join, saves, fixes an error and runs it", async ({ page, braid, llm, consoleErrors }) => {
  // A long story: some forty steps through the UI.
  test.setTimeout(90_000);
  const { runId } = await newUserStory(page, braid, llm, consoleErrors, {
    shot: (name) => screenshot(page, name),
    // The run view goes live: running while the judges' answers are held,
    // then completed without a reload.
    onRunPage: async (id, release) => {
      await expect(page.getByTestId("run-view")).toHaveAttribute("data-run", id);
      await expectRunStatus(page, "running");
      await screenshot(page, "story-run-running");
      release();
      await expectRunStatus(page, "completed");
      // One judge's visit: its prompt, response, tokens and cost; 12 in and
      // 4 out at $0.5 and $1.5 per 1k tokens.
      await inspectVisit(page, "llm");
      await expectLlmInspector(page, {
        prompt: /Write about woven braids \(branch \d\)\./,
        response: /answer \d/,
        inputTokens: 12,
        outputTokens: 4,
        costUsd: (12 * 0.5 + 4 * 1.5) / 1000,
      });
      // The run's totals on the page are the server's `usage`.
      const run = await expectTotalsMatchApi(page, braid, id);
      expect(run.usage.cost_usd).toBeCloseTo((3 * (12 * 0.5 + 4 * 1.5)) / 1000, 10);
      await screenshot(page, "story-run-inspector");
    },
  });

  // The Workflows page shows the new workflow with its latest version and last run.
  await page.goto("/");
  const row = page.getByTestId("workflow-row-story");
  await expect(row).toContainText("v2");
  await expect(row.getByText("completed")).toBeVisible();
  await row.getByRole("link", { name: /completed/ }).click();
  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
});

type Box = { ref: string; x: number; y: number; width: number; height: number };

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

test("a saved fan-out, join and loop opens laid out and saves back unchanged", async ({ page, braid }) => {
  const yamlText = await fs.readFile(path.join(here, "fixtures/review_loop.yaml"), "utf8");
  const saved = await braid.saveBundle(yamlText);
  expect(saved).toMatchObject({ version: 1, created: true });

  await page.goto("/workflows/review_loop");
  const refs = ["prepare", "draft", "gather", "publish"];
  const boxes: Box[] = [];
  for (const ref of refs) {
    const node = page.getByTestId(`node-${ref}`);
    await expect(node).toBeVisible();
    const b = (await node.boundingBox())!;
    boxes.push({ ref, ...b });
  }
  for (const [i, a] of boxes.entries()) for (const b of boxes.slice(i + 1)) expect(overlaps(a, b), `${a.ref} and ${b.ref} overlap`).toBe(false);
  // Ranks follow the transitions: prepare above draft above gather above publish.
  expect(boxes.map((b) => b.y)).toEqual([...boxes.map((b) => b.y)].sort((p, q) => p - q));
  await expect(page.getByTestId("editor-version")).toHaveText("version 1");
  await expect(page.getByText("×3")).toBeVisible();
  await expect(page.getByText("loop ≤2")).toBeVisible();
  await expect(page.getByTestId("node-gather").getByText("join all ← prepare")).toBeVisible();
  await expect(page.getByTestId("node-prepare").getByText("start")).toBeVisible();

  await save(page);
  await expect(saveStatus(page)).toHaveText("unchanged (version 1)");
  const listed = await braid.request<{ items: { latest_version: number }[] }>("GET", "/api/workflow-defs");
  expect(listed.body.items[0].latest_version).toBe(1);
  // The layout made on open was stored with version 1.
  const stored = await braid.request<{ layout?: Record<string, { x: number; y: number }> }>("GET", "/api/workflow-defs/review_loop");
  expect(Object.keys(stored.body.layout ?? {}).sort()).toEqual([...refs].sort());

  // The loop edge, from the gather node's panel: its settings are the file's.
  await page.getByTestId("node-gather").click();
  await nodePanel(page).getByRole("button", { name: /prepare/ }).click();
  const edge = edgePanel(page);
  await expect(edge.getByLabel("ref")).toHaveValue("again");
  await expect(edge.getByLabel("max_iterations")).toHaveValue("2");
  await expect(edge.getByLabel("condition CEL")).toHaveValue("state.score < 3");
});

test("the YAML pane and the canvas stay in step", async ({ page, braid, consoleErrors }) => {
  const yamlText = await fs.readFile(path.join(here, "fixtures/review_loop.yaml"), "utf8");
  await braid.saveBundle(yamlText);
  await page.goto("/workflows/review_loop");
  await expect(page.getByTestId("node-publish")).toBeVisible();

  await page.getByRole("button", { name: "YAML" }).click();
  const pane = page.getByTestId("yaml-pane");
  const editor = pane.locator(".cm-content");
  await expect(pane).toContainText("ref: publish");

  // Text that parses replaces the bundle: the canvas follows.
  const renamed = yamlText.replaceAll("publish", "release");
  await editor.click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText(renamed);
  await expect(page.getByTestId("node-release")).toBeVisible();
  await expect(page.getByTestId("node-publish")).toHaveCount(0);

  // Text that does not parse is reported inline; the canvas keeps the last good bundle.
  await page.keyboard.press("ControlOrMeta+End");
  await page.keyboard.insertText("\nnodes: [oops\n");
  await expect(page.getByTestId("yaml-error")).toBeVisible();
  await expect(page.getByTestId("node-release")).toBeVisible();
  await screenshot(page, "editor-yaml-error");

  // An edit on the canvas side rewrites the text.
  await page.keyboard.press("ControlOrMeta+z");
  await expect(page.getByTestId("yaml-error")).toHaveCount(0);
  await page.getByTestId("node-release").click();
  await nodePanel(page).getByLabel("name").fill("Publish the drafts");
  await expect(pane).toContainText("name: Publish the drafts");

  // Delete removes a selected edge too; saving the result creates version 2.
  await page.getByTestId("node-draft").click();
  await nodePanel(page).getByRole("button", { name: /gather/ }).click();
  await expect(edgePanel(page)).toBeVisible();
  await page.keyboard.press("Delete");
  await expect(page.locator(".react-flow__edge")).toHaveCount(3);
  consoleErrors.allow(/status of 422/);
  await save(page);
  // draft no longer reaches the join: the server says so on the join node.
  await expect(saveStatus(page)).toContainText("not saved");
});

test("without the mouse on the canvas: palette click, transition from the panel, warnings on the node", async ({ page }) => {
  await page.goto("/");
  await page.getByLabel("New workflow name").fill("fan");
  await page.getByLabel("New workflow name").press("Enter");
  await expect(page.getByTestId("node-start")).toBeVisible();
  await page.getByTestId("palette-update_context").click();
  await expect(page.getByTestId("node-update")).toBeVisible();

  // A fan-out that no node joins: saved, with the server's warning on its node.
  await page.getByTestId("node-start").click();
  await nodePanel(page).getByLabel("Add transition to").selectOption("update");
  await nodePanel(page).getByRole("button", { name: "Add", exact: true }).last().click();
  await nodePanel(page).getByRole("button", { name: "update", exact: true }).click();
  await edgePanel(page).getByLabel("spawn_count").fill("2");
  await save(page);
  await expect(saveStatus(page)).toHaveText("version 1 saved");
  await expect(page.getByTestId("node-warning-start")).toHaveText("1 warning");
  await expect(page.getByTestId("problems-list")).toContainText("Saved with 1 warning");
  await page.getByTestId("node-start").click();
  await expect(nodePanel(page).getByTestId("panel-warnings")).toContainText("no node joins it");
  await screenshot(page, "editor-warning");

  // Keyboard only: a focused node is selected with Enter and removed with Delete.
  await page.getByTestId("rf__node-update").focus();
  await page.keyboard.press("Enter");
  await expect(nodePanel(page).getByLabel("ref")).toHaveValue("update");
  await page.keyboard.press("Delete");
  await expect(page.getByTestId("node-update")).toHaveCount(0);
  await expect(page.locator(".react-flow__edge")).toHaveCount(0);
  await expect(page.getByTestId("workflow-panel")).toBeVisible();

  // Leaving with unsaved edits asks first.
  const nav = page.getByRole("banner").getByRole("link", { name: "Workflows" });
  page.once("dialog", (d) => void d.dismiss());
  await nav.click();
  await expect(page).toHaveURL(/\/workflows\/fan$/);
  await expect(page.getByTestId("editor-version")).toHaveText("version 1 · edited");
  page.once("dialog", (d) => void d.accept());
  await nav.click();
  await expect(page.getByTestId("workflow-row-fan")).toBeVisible();
});

test("the run form is generated from input_schema and shows the server's INPUT_SCHEMA errors on their fields", async ({ page, braid, consoleErrors }) => {
  // `dependentRequired` is checked by the server (JSON Schema 2020-12) but not by the form's
  // validator (draft-07), so the form submits and the server's answer is what is shown.
  await braid.saveBundle({
    name: "with_input",
    initial_node: "echo",
    input_schema: {
      type: "object",
      required: ["topic"],
      properties: {
        topic: { type: "string" },
        options: { type: "object", properties: { style: { type: "string" }, tone: { type: "string" } }, dependentRequired: { style: ["tone"] } },
      },
    },
    nodes: [{ ref: "echo", action: { kind: "update_context", updates: [{ path: "output.topic", expr: "input.topic" }] } }],
  });
  await page.goto("/workflows/with_input");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  const form = page.getByTestId("run-form");

  // The form's own check first: topic is required.
  await form.getByRole("button", { name: "Start run (v1)" }).click();
  await expect(form).toContainText("must have required property 'topic'");

  await form.getByLabel("topic").fill("braids");
  await form.getByLabel("style").fill("terse");
  consoleErrors.allow(/status of 422/);
  await form.getByRole("button", { name: "Start run (v1)" }).click();
  await expect(form.getByRole("alert")).toContainText("does not match the input_schema");
  await expect(form.locator("#root_options__error")).toContainText("\"tone\" is a required property");
  await screenshot(page, "editor-run-form-error");
  await expect(page).toHaveURL(/\/workflows\/with_input$/);

  await form.getByLabel("tone").fill("dry");
  await form.getByRole("button", { name: "Start run (v1)" }).click();
  await expect(page).toHaveURL(/\/runs\/run_[0-9a-f]+$/);
  const run = await braid.waitForRun(page.url().split("/runs/")[1]);
  expect(run).toMatchObject({ status: "completed", context: { output: { topic: "braids" } } });
});

test("a shared llm_call action, its prompt spec and model profile are edited from the node panel", async ({ page, braid, llm }) => {
  await braid.saveBundle(judgePanel(llm.baseUrl));
  await page.goto("/workflows/judge_panel");
  await page.getByTestId("node-judge").click();
  const node = nodePanel(page);
  await expect(node.getByLabel("shared action")).toHaveValue("judge_llm");
  await expect(node.getByLabel("prompt", { exact: true })).toHaveValue("judge_prompt");
  await expect(node.getByLabel("model", { exact: true })).toHaveValue("fast");
  await expect(node.getByTestId("model-profile-editor").getByLabel("base_url")).toHaveValue(llm.baseUrl);
  await expect(node.getByText("The action's own (shared: judge_llm)")).toBeVisible();
  await expect(node.getByLabel("max_attempts").last()).toHaveValue("2");
  await expect(page.getByTestId("node-judge")).toContainText("llm_call · judge_llm");

  // Edits go to the bundle-level objects: a new version, and the YAML says so.
  await node.getByLabel("template").fill("Question: {{state.question}}. Judge {{_branch.index}}: A or B?");
  await node.getByLabel("max_attempts").last().fill("3");
  await screenshot(page, "editor-llm-panel");
  await save(page);
  await expect(saveStatus(page)).toHaveText("version 2 saved");
  const stored = await braid.request<{ prompt_specs: { template: string }[]; actions: { execution: { retry_policy: { max_attempts: number } } }[] }>(
    "GET",
    "/api/workflow-defs/judge_panel",
  );
  expect(stored.body.prompt_specs[0].template).toBe("Question: {{state.question}}. Judge {{_branch.index}}: A or B?");
  expect(stored.body.actions[0].execution.retry_policy.max_attempts).toBe(3);
});

test("a model profile's max_concurrency and rate_limit are checked as typed, named by the server, and round-trip through save", async ({ page, braid, llm, consoleErrors }) => {
  await braid.saveBundle(judgePanel(llm.baseUrl));
  await page.goto("/workflows/judge_panel");
  await page.getByTestId("node-judge").click();
  const limits = nodePanel(page).getByTestId("model-profile-limits");
  await expect(limits.getByLabel("max_concurrency")).toHaveValue("");
  await expect(limits.getByText("calls in flight; empty: 16")).toBeVisible();

  await limits.getByLabel("max_concurrency").fill("4");
  await limits.getByLabel("rate_limit.requests_per_minute").fill("120");
  // Typed out of range: the field says so at once …
  await limits.getByLabel("rate_limit.tokens_per_minute").fill("0");
  await expect(limits).toContainText("tokens_per_minute must be a whole number of at least 1");
  // … and the server's problem lands on the same field at save; nothing is stored.
  consoleErrors.allow(/status of 422/);
  await save(page);
  await expect(saveStatus(page)).toContainText("not saved");
  await expect(limits).toContainText("rate_limit.tokens_per_minute must be at least 1");
  await expect(limits.locator("[data-invalid=true]")).toHaveCount(1);
  await limits.scrollIntoViewIfNeeded();
  await screenshot(page, "editor-rate-limit-error");
  expect((await braid.request<{ version?: number }>("GET", "/api/workflow-defs/judge_panel?version=2")).status).toBe(404);

  await limits.getByLabel("rate_limit.tokens_per_minute").fill("50000");
  await save(page);
  await expect(saveStatus(page)).toHaveText("version 2 saved");
  type Profile = { max_concurrency?: number; rate_limit?: { requests_per_minute?: number; tokens_per_minute?: number } };
  const stored = await braid.request<{ model_profiles: Profile[] }>("GET", "/api/workflow-defs/judge_panel");
  expect(stored.body.model_profiles[0]).toMatchObject({ max_concurrency: 4, rate_limit: { requests_per_minute: 120, tokens_per_minute: 50000 } });
  await screenshot(page, "editor-rate-limit");

  // Read back from the stored version into the same fields.
  await page.reload();
  await page.getByTestId("node-judge").click();
  await expect(limits.getByLabel("max_concurrency")).toHaveValue("4");
  await expect(limits.getByLabel("rate_limit.requests_per_minute")).toHaveValue("120");
  await expect(limits.getByLabel("rate_limit.tokens_per_minute")).toHaveValue("50000");

  // Cleared, the limits leave the profile (no empty `rate_limit`).
  await limits.getByLabel("rate_limit.requests_per_minute").fill("");
  await limits.getByLabel("rate_limit.tokens_per_minute").fill("");
  await save(page);
  await expect(saveStatus(page)).toHaveText("version 3 saved");
  const cleared = await braid.request<{ model_profiles: Profile[] }>("GET", "/api/workflow-defs/judge_panel");
  expect(cleared.body.model_profiles[0].max_concurrency).toBe(4);
  expect(cleared.body.model_profiles[0]).not.toHaveProperty("rate_limit");
});
