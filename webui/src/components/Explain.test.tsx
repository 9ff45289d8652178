import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setToken } from "../api/client";
import { Explain } from "./Explain";

// fetch mocked at the boundary: the typed client captures globalThis.fetch when its module loads, so the stub
// goes in before any import (vi.hoisted) and forwards to a per-test handler.
const network = vi.hoisted(() => {
  const handler = { answer: (_request: Request): Response | Promise<Response> => new Response(null, { status: 500 }) };
  const seen: Request[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    seen.push(request);
    return handler.answer(request);
  }) as typeof fetch;
  return { handler, seen };
});

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

function view(usedRate: number | null = 0.5) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <Explain app="digits" version={2} instance={[[0, 1], [1, 0]]} usedRate={usedRate} />
    </QueryClientProvider>,
  );
}

describe("the explanation view", () => {
  const created: string[] = [];
  const revoked: string[] = [];
  beforeEach(() => {
    network.seen.length = 0;
    created.length = 0;
    revoked.length = 0;
    setToken("t0k3n");
    URL.createObjectURL = vi.fn(() => { created.push(`blob:overlay-${created.length}`); return created.at(-1)!; });
    URL.revokeObjectURL = vi.fn((url: string) => { revoked.push(url); });
  });
  afterEach(() => setToken(null));

  it("asks admin with the chosen method and width, then shows the label and the overlay fetched with the token", async () => {
    network.handler.answer = (request) => {
      if (request.url.endsWith("/inference_jobs/digits/2/explain"))
        return json(200, { id: "ex-1", method: "lime", slice_rate: 0.5, label: 7, class_index: 7 });
      if (request.url.endsWith("/explanations/ex-1/overlay.png"))
        return new Response(new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" }), { status: 200, headers: { "Content-Type": "image/png" } });
      return json(404, { error: "not_found", detail: request.url });
    };
    const { unmount } = view();
    await userEvent.selectOptions(screen.getByLabelText("Method"), "lime");
    await userEvent.selectOptions(screen.getByLabelText("Slice rate"), "used");
    await userEvent.click(screen.getByRole("button", { name: "Explain" }));

    expect(await screen.findByTestId("explained-label")).toHaveTextContent("7");
    const image = await screen.findByRole("img", { name: /LIME heat map .* predict 7/ });
    expect(image).toHaveAttribute("src", "blob:overlay-0");

    const [ask, png] = network.seen;
    expect(ask.method).toBe("POST");
    expect(await ask.json()).toEqual({ instance: [[0, 1], [1, 0]], method: "lime", slice_rate: 0.5 });
    expect(png.url).toMatch(/\/explanations\/ex-1\/overlay\.png$/);
    expect(png.headers.get("Authorization")).toBe("Bearer t0k3n");

    unmount();
    expect(revoked).toEqual(["blob:overlay-0"]);
  });

  it("shows the API's error envelope and fetches no overlay", async () => {
    network.handler.answer = () => json(503, { error: "no_explainer", detail: "no explainer is running for this inference job" });
    view(null);
    expect(screen.getByLabelText("Slice rate")).toHaveDisplayValue("Full width");
    await userEvent.click(screen.getByRole("button", { name: "Explain" }));

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("no_explainer: no explainer is running for this inference job");
    expect(network.seen).toHaveLength(1);
    expect(await network.seen[0].json()).toEqual({ instance: [[0, 1], [1, 0]], method: "gradcam" });
    expect(screen.queryByRole("img")).toBeNull();
  });
});
