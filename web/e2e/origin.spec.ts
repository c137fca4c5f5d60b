// In a real browser, a page of another origin cannot drive the API: its
// POST is refused before anything is written and its WebSocket never opens,
// while the same calls from the server's own page succeed.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect, test } from "./harness";

const bundle = JSON.stringify({
  name: "from_a_page",
  initial_node: "a",
  nodes: [{ ref: "a", action: { kind: "update_context", updates: [] } }],
});

// What the page tries: a "simple" POST (no preflight, so the browser really
// sends it) and a WebSocket to the runs list.
async function attempt([braidUrl, body]: [string, string]) {
  const post = await fetch(`${braidUrl}/api/workflow-defs`, { method: "POST", body, headers: { "content-type": "text/plain" } })
    .then((r) => `status ${r.status}`)
    .catch((e: Error) => `rejected: ${e.message}`);
  const socket = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`${braidUrl.replace("http", "ws")}/api/live`);
    ws.onopen = () => {
      ws.close();
      resolve("open");
    };
    ws.onerror = () => resolve("error");
  });
  return { post, socket };
}

test("another origin's page is refused; the server's own page is not", async ({ page, braid, consoleErrors }) => {
  // Another local site (loopback too, so only the server's check stands in the way).
  const other = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>other site</title><p>other site</p>");
  });
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
  try {
    // The browser reports the refusals on the console; they are the point.
    consoleErrors.allow(/CORS policy|Failed to load resource|WebSocket connection .* failed/);
    await page.goto(otherUrl);
    await expect(page.getByText("other site")).toBeVisible();
    const refused = await page.evaluate(attempt, [braid.url, bundle] as [string, string]);
    expect(refused).toEqual({ post: "rejected: Failed to fetch", socket: "error" });
    const list = await braid.request<{ items: unknown[] }>("GET", "/api/workflow-defs");
    expect(list.body.items).toEqual([]);

    await page.goto("/");
    const allowed = await page.evaluate(attempt, [braid.url, bundle] as [string, string]);
    expect(allowed).toEqual({ post: "status 201", socket: "open" });
    const after = await braid.request<{ items: { name: string }[] }>("GET", "/api/workflow-defs");
    expect(after.body.items.map((w) => w.name)).toEqual(["from_a_page"]);
  } finally {
    other.closeAllConnections();
    await new Promise((resolve) => other.close(resolve));
  }
});
