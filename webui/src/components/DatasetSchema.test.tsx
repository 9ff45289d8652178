import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { DatasetSchema, parseShape } from "./DatasetSchema";

// fetch stubbed at the boundary before the typed client captures it (see Explain.test.tsx): GET answers the
// schema as inferred; PATCH answers it edited with the body sent, which the test reads back.
const network = vi.hoisted(() => {
  const sent: { method: string; body: unknown }[] = [];
  let schema: Record<string, unknown> = {
    task: "IMAGE_CLASSIFICATION", input_shape: [1, 8, 8], dtype: "float32", num_classes: 3,
    classes: ["0", "1", "2"], status: "inferred", inferred: {},
  };
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const body = request.method === "PATCH" ? await request.json() : null;
    sent.push({ method: request.method, body });
    if (body) schema = { ...schema, ...body, status: Object.keys(body).length ? "edited" : "confirmed" };
    return new Response(JSON.stringify(schema), { status: 200, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { sent };
});

describe("a dataset's schema", () => {
  it("shows the inferred schema and sends the owner's edit", async () => {
    const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(<QueryClientProvider client={queries}><DatasetSchema datasetId="d1" name="digits" /></QueryClientProvider>);
    expect(await screen.findByText("[1, 8, 8]")).toBeInTheDocument();
    expect(screen.getByTestId("schema-status")).toHaveTextContent("inferred");
    const form = screen.getByRole("form", { name: "Edit the schema" });
    await userEvent.clear(within(form).getByLabelText("Number of classes"));
    await userEvent.type(within(form).getByLabelText("Number of classes"), "10");
    await userEvent.clear(within(form).getByLabelText(/^Class labels/));
    await userEvent.click(within(form).getByRole("button", { name: "Save changes" }));
    expect(await screen.findByText("edited")).toBeInTheDocument();
    expect(network.sent.at(-1)).toEqual({ method: "PATCH", body: { input_shape: [1, 8, 8], num_classes: 10, classes: [] } });
  });

  it("reads shapes as the API takes them", () => {
    expect(parseShape("3, any, any")).toEqual([3, null, null]);
    expect(parseShape("1, 0")).toBeNull();
    expect(parseShape("1,2,3,4,5")).toBeNull();
    expect(parseShape("x")).toBeNull();
  });
});
