// Prints the run's result as one `N passed, N failed` line, the form CI
// (and scripts/test.sh) reads; Playwright's own summary spreads it over
// several lines.
import type { FullResult, Reporter, TestCase, TestResult } from "@playwright/test/reporter";

export default class Summary implements Reporter {
  private passed = 0;
  private failed = 0;

  onTestEnd(test: TestCase, result: TestResult): void {
    // Only a test's final attempt counts (retries are off, but be exact).
    if (result.retry < test.retries && result.status !== "passed" && result.status !== "skipped") return;
    if (result.status === "passed") this.passed++;
    else if (result.status !== "skipped") this.failed++;
  }

  onEnd(result: FullResult): void {
    // A run that broke before any test (a config or import error) is a failure too.
    const failed = this.failed + (result.status !== "passed" && this.failed === 0 ? 1 : 0);
    console.log(`${this.passed} passed, ${failed} failed`);
  }

  printsToStdio(): boolean {
    return true;
  }
}
