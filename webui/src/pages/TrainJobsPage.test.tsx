import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import { CreateTrainJob } from "./TrainJobsPage";

function page(items: { datasets: object[]; models: object[] }) {
  // The lists the form offers, put in the query cache as admin would have answered (never stale: no fetch).
  const queries = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  queries.setQueryData(["datasets", "all"], { items: items.datasets, total: items.datasets.length, offset: 0, limit: 200 });
  queries.setQueryData(["models", "all"], { items: items.models, total: items.models.length, offset: 0, limit: 200 });
  return render(
    <QueryClientProvider client={queries}>
      <MemoryRouter>
        <CreateTrainJob />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

const IMG = "IMAGE_CLASSIFICATION";

describe("the train-job form", () => {
  it("offers only the datasets and models of the chosen task", async () => {
    page({
      datasets: [{ id: "d1", name: "digits", task: IMG }, { id: "d2", name: "iris", task: "TABULAR_CLASSIFICATION" }],
      models: [{ id: "m1", name: "SlicedMLP", task: IMG }, { id: "m2", name: "SlicedMLP-tabular", task: "TABULAR_CLASSIFICATION" }],
    });
    const form = screen.getByRole("form", { name: "Start a train job" });
    const train = within(form).getByLabelText("Training dataset");
    expect(within(train).getAllByRole("option").map((o) => o.textContent)).toEqual(["— choose —", "digits"]);
    expect(within(form).getByLabelText("SlicedMLP")).toBeInTheDocument();
    expect(within(form).queryByLabelText("SlicedMLP-tabular")).toBeNull();
    await userEvent.selectOptions(within(form).getByLabelText("Task"), "TABULAR_CLASSIFICATION");
    expect(within(form).getByLabelText("SlicedMLP-tabular")).toBeInTheDocument();
    // models are optional: with none ticked, the form says admin chooses the fitting templates
    const models = within(form).getByRole("group", { name: "Models (optional)" });
    expect(models).toHaveAccessibleDescription(/None ticked: Easel trains every template .* fits the training data/);
    await userEvent.click(within(form).getByLabelText("SlicedMLP-tabular"));
    expect(models).toHaveAccessibleDescription("1 ticked: only it is trained.");
  });

  it("names each wrong field next to it, linked for screen readers, without sending", async () => {
    page({ datasets: [], models: [] });
    const form = screen.getByRole("form", { name: "Start a train job" });
    await userEvent.type(within(form).getByLabelText("App name"), "no spaces");
    await userEvent.clear(within(form).getByLabelText("Trials per model"));
    await userEvent.type(within(form).getByLabelText("Trials per model"), "0");
    await userEvent.click(within(form).getByRole("button", { name: "Start training" }));
    const app = within(form).getByLabelText(/^App name/);
    expect(app).toHaveAttribute("aria-invalid", "true");
    expect(app).toHaveAccessibleDescription(/letters, digits/);
    expect(within(form).getByLabelText(/^Trials per model/)).toHaveAccessibleDescription("a whole number from 1 to 10000");
    expect(within(form).getByText("choose a training dataset")).toBeInTheDocument();
    expect(within(form).queryByText(/choose at least one model/)).toBeNull();
    expect(within(form).getByLabelText(/^Workers per model/)).not.toHaveAttribute("aria-invalid");
  });
});
