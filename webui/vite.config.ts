/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Admin serves the build under /ui/ (and index.html at /). `npm run dev` proxies the API to a local admin.
const admin = process.env.EASEL_ADMIN_URL ?? "http://127.0.0.1:3000";
const api = ["/tokens", "/users", "/datasets", "/models", "/train_jobs", "/trials", "/inference_jobs", "/health"];

export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  server: { proxy: Object.fromEntries(api.map((path) => [path, admin])) },
  build: { chunkSizeWarningLimit: 1200 },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test-setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
