import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ModelVersions } from "./ModelVersions";

// fetch stubbed at the boundary before the typed client captures it (see Explain.test.tsx)
const network = vi.hoisted(() => {
  const seen: string[] = [];
  const page = {
    items: [{
      id: "v2", app: "digits", number: 2, stage: "production", trial_id: "abcdef0123", model_id: "m",
      train_dataset_id: "d", knobs: {}, profile: {}, owner_id: "u", created_at: "2026-11-30T10:00:00Z",
      history: [
        { from_stage: null, to_stage: "staging", by_user_id: "u", at: "2026-11-30T10:00:00Z", reason: "registered", verdict_id: null },
        { from_stage: "staging", to_stage: "production", by_user_id: "u", at: "2026-11-30T10:05:00Z", reason: "passed the promotion gate", verdict_id: "x" },
      ],
    }],
    total: 1, offset: 0, limit: 50,
  };
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    seen.push(new URL(request.url).pathname);
    return new Response(JSON.stringify(page), { status: 200, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { seen };
});

describe("the model versions table", () => {
  it("shows each version's stage and its history", async () => {
    const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(<QueryClientProvider client={queries}><ModelVersions app="digits" /></QueryClientProvider>);
    expect(await screen.findByText("#2")).toBeInTheDocument();
    expect(screen.getByText("production", { selector: ".badge" })).toBeInTheDocument();
    expect(screen.getByText(/staging → production \(passed the promotion gate\)/)).toBeInTheDocument();
    expect(network.seen).toEqual(["/apps/digits/versions"]);
  });
});
