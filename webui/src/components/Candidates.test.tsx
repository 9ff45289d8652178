import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Candidates, readCandidates } from "./Candidates";

const record = {
  schema: { task: "IMAGE_CLASSIFICATION", input_shape: [1, 8, 8], num_classes: 10 },
  schema_status: "confirmed",
  chosen: [{ model_id: "m1", name: "SlicedMLP", reason: "declares it fits IMAGE_CLASSIFICATION" }],
  passed_over: [{ model_id: "m2", name: "RgbOnly", reason: "needs input shape [3, 'any', 'any']" }],
  passed_over_total: 3,
  added: [],
};

describe("a declarative job's candidates", () => {
  it("lists the chosen templates and why the others were passed over", () => {
    render(<Candidates raw={record} />);
    const region = screen.getByRole("region", { name: "Candidate models" });
    const chosen = within(region).getByRole("table", { name: "Chosen (1)" });
    expect(within(chosen).getByRole("row", { name: /SlicedMLP declares it fits/ })).toBeInTheDocument();
    expect(within(region).getByText("Passed over (3, 1 listed)")).toBeInTheDocument();
    expect(within(region).getByText(/input shape \[1, 8, 8\], 10 classes \(schema confirmed\)/)).toBeInTheDocument();
  });

  it("shows nothing for a job that named its models, and skips malformed entries", () => {
    const { container } = render(<Candidates raw={null} />);
    expect(container).toBeEmptyDOMElement();
    expect(readCandidates({ chosen: [{ name: 1 }, { name: "A", reason: "fits" }] })?.chosen).toEqual(
      [{ model_id: "", name: "A", reason: "fits" }]);
  });
});
