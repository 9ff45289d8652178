import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiError, toApiError } from "../api/client";
import { ErrorBox, Pager } from "./ui";

describe("ErrorBox", () => {
  it("shows the API's envelope as an alert", () => {
    render(<ErrorBox error={toApiError(422, { error: "invalid_dataset", detail: "the zip holds no class folders" })} />);
    expect(screen.getByRole("alert")).toHaveTextContent("invalid_dataset: the zip holds no class folders");
  });
  it("words a body that is not an envelope by its status", () => {
    const error = toApiError(502, "<html>bad gateway</html>");
    expect(error).toBeInstanceOf(ApiError);
    expect([error.code, error.detail]).toEqual(["http_502", "the server answered 502"]);
  });
  it("renders nothing without an error", () => {
    const { container } = render(<ErrorBox error={null} />);
    expect(container).toBeEmptyDOMElement();
  });
});

describe("Pager", () => {
  it("moves by a page and stops at the ends", async () => {
    const onChange = vi.fn();
    render(<Pager label="Datasets" offset={20} limit={20} total={45} onChange={onChange} />);
    expect(screen.getByRole("navigation", { name: "Datasets pages" })).toHaveTextContent("21–40 of 45");
    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    await userEvent.click(screen.getByRole("button", { name: "Previous" }));
    expect(onChange.mock.calls).toEqual([[40], [0]]);
  });
  it("hides itself when one page holds everything", () => {
    const { container } = render(<Pager label="x" offset={0} limit={20} total={3} onChange={() => {}} />);
    expect(container).toBeEmptyDOMElement();
  });
  it("disables Next on the last page", () => {
    render(<Pager label="x" offset={40} limit={20} total={45} onChange={() => {}} />);
    expect(screen.getByRole("button", { name: "Next" })).toBeDisabled();
  });
});
