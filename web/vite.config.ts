// Vite builds the UI into dist/, which the braid binary embeds and serves
// under `/`. During development `npm run dev` proxies the API to a local
// `braid serve` (BRAID_URL, default http://127.0.0.1:8080).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

const api = process.env.BRAID_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: {
    // Current Chromium, Firefox and Safari (SPEC §10).
    target: ["chrome120", "firefox120", "safari17"],
    outDir: process.env.BRAID_WEB_OUT_DIR ?? "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": {
        target: api,
        ws: true,
        // braid serve refuses hosts and origins that are not its own
        // (docs/web.md, "Origin and Host checks"): present the dev
        // server's own pages as the server's, and nothing else.
        changeOrigin: true,
        configure: (proxy) => {
          const asServer = (proxyReq: { setHeader(name: string, value: string): void }, req: { headers: Record<string, string | string[] | undefined> }) => {
            if (req.headers.origin === `http://${req.headers.host}`) proxyReq.setHeader("origin", new URL(api).origin);
          };
          proxy.on("proxyReq", asServer);
          proxy.on("proxyReqWs", asServer);
        },
      },
    },
  },
});
