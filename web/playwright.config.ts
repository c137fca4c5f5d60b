// Browser tests (web/e2e/) against the real `braid serve`, in Debian's
// Chromium: Playwright's own browser downloads are never used (the machine
// is offline). `npm run e2e`; docs/web.md.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  // Playwright empties its output dir at start; screenshots live beside it
  // in test-results/ (e2e/harness.ts) and are kept.
  outputDir: "test-results/playwright",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: Number(process.env.E2E_WORKERS ?? 2),
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"], ["./e2e/support/summary.ts"]],
  use: {
    browserName: "chromium",
    viewport: { width: 1280, height: 800 },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // No lookups off the machine: only 127.0.0.1 resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      ],
    },
  },
});
