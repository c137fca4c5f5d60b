// What every browser test stands on: `test` and `expect` from Playwright
// with these fixtures, each fresh per test.
//   dir        a temp directory, removed afterwards
//   llm        a local OpenAI chat-completions server (support/llm.ts)
//   braid      `braid serve` on a temp SQLite file and a free port, with
//              helpers to save bundles and start and wait for runs
//              (support/braid.ts); `baseURL` points at it, so
//              `page.goto("/runs")` opens the real server's UI
//   page       fails the test on any console error or uncaught page error
//              (`consoleErrors.allow(/…/)` for one the test provokes)
// and `screenshot(page, name)`, which writes web/test-results/<name>.png.
import { test as base, expect, type Page } from "@playwright/test";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Braid } from "./support/braid";
import { LlmServer } from "./support/llm";

export { expect };
export type { Braid } from "./support/braid";
export type { LlmServer, Reply, ChatRequest } from "./support/llm";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where screenshots go: web/test-results/. */
export const screenshotDir = path.resolve(here, "../test-results");

/** The page's console errors and uncaught errors, and those the test expects. */
export class ConsoleErrors {
  private readonly allowed: RegExp[] = [];
  private readonly seen: string[] = [];

  /** Do not fail the test on errors matching `pattern` (one the test provokes). */
  allow(pattern: RegExp): void {
    this.allowed.push(pattern);
  }

  record(error: string): void {
    this.seen.push(error);
  }

  /** The errors seen so far that no pattern allows. */
  get unexpected(): string[] {
    return this.seen.filter((e) => !this.allowed.some((p) => p.test(e)));
  }
}

interface Fixtures {
  dir: string;
  llm: LlmServer;
  braid: Braid;
  consoleErrors: ConsoleErrors;
}

export const test = base.extend<Fixtures>({
  // eslint-disable-next-line no-empty-pattern
  dir: async ({}, use) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "braid-e2e-"));
    await use(dir);
    await fs.rm(dir, { recursive: true, force: true });
  },
  // eslint-disable-next-line no-empty-pattern
  llm: async ({}, use) => {
    const llm = new LlmServer();
    await llm.start();
    await use(llm);
    await llm.stop();
  },
  braid: async ({ dir }, use, testInfo) => {
    const braid = new Braid(dir);
    await braid.start();
    await use(braid);
    await braid.stop();
    if (testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach("braid serve stderr", { body: braid.log, contentType: "text/plain" });
    }
  },
  baseURL: async ({ braid }, use) => {
    await use(braid.url);
  },
  // eslint-disable-next-line no-empty-pattern
  consoleErrors: async ({}, use) => {
    await use(new ConsoleErrors());
  },
  page: async ({ page, consoleErrors }, use) => {
    const record = (e: string) => consoleErrors.record(e);
    page.on("console", (msg) => {
      if (msg.type() === "error") {
        const at = msg.location();
        record(`console error: ${msg.text()}${at.url ? ` (${at.url}:${at.lineNumber})` : ""}`);
      }
    });
    page.on("pageerror", (err) => record(`page error: ${err.stack ?? err.message}`));
    await use(page);
    expect(consoleErrors.unexpected, "the page logged no errors").toEqual([]);
  },
});

/** Writes web/test-results/<name>.png (the whole page). */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
