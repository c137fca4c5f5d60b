// The UI is served by the real `braid serve`: the app starts at `/`, and a
// deep link that no file matches is answered with the app too (the
// server's fallback), where the client-side router takes over.
import { expect, screenshot, test } from "./harness";

test("the app opens at / and at a deep link", async ({ page, braid }) => {
  await page.goto("/");
  const header = page.getByRole("banner");
  await expect(header.getByRole("link", { name: "Braid", exact: true })).toBeVisible();
  await expect(header.getByRole("link", { name: "Workflows" })).toBeVisible();
  await expect(header.getByRole("link", { name: "Runs" })).toBeVisible();
  await screenshot(page, "smoke-home");

  // Opened directly, not through the app's own navigation.
  const deep = await page.goto("/runs/does-not-exist");
  expect(deep?.status()).toBe(200);
  expect(deep?.headers()["cache-control"]).toBe("no-cache");
  await expect(page).toHaveURL(`${braid.url}/runs/does-not-exist`);
  await expect(header.getByRole("link", { name: "Runs" })).toBeVisible();
  await screenshot(page, "smoke-deep-link");

  // The API beside it still answers JSON, also for what it does not know.
  const api = await page.request.get("/api/runs/does-not-exist");
  expect(api.status()).toBe(404);
  expect((await api.json()).error.code).toBe("NOT_FOUND");
});
