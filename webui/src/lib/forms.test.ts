import { describe, expect, it } from "vitest";
import { checkTrainJob, type TrainJobForm } from "./forms";

const good: TrainJobForm = {
  app: "digits", task: "IMAGE_CLASSIFICATION", trainDatasetId: "a", valDatasetId: "b", modelIds: ["m"],
  trials: "2", workers: "1", hours: "0.5",
};

describe("checkTrainJob", () => {
  it("builds the request body admin expects", () => {
    expect(checkTrainJob(good)).toEqual({
      body: {
        app: "digits", task: "IMAGE_CLASSIFICATION", train_dataset_id: "a", val_dataset_id: "b", model_ids: ["m"],
        budget: { MODEL_TRIAL_COUNT: 2, WORKERS: 1, TIME_HOURS: 0.5 },
      },
    });
  });
  it("names every field that is wrong", () => {
    const result = checkTrainJob({ ...good, app: "no spaces", modelIds: Array(21).fill("m"), trials: "0", workers: "65", hours: "-1", trainDatasetId: "" });
    expect("errors" in result && Object.keys(result.errors).sort()).toEqual(
      ["app", "hours", "modelIds", "trainDatasetId", "trials", "workers"]);
  });
  it("sends no models when none is ticked: admin chooses the fitting templates", () => {
    const result = checkTrainJob({ ...good, modelIds: [] });
    expect("body" in result && result.body.model_ids).toEqual([]);
  });
  it("rejects fractional counts and empty hours", () => {
    const result = checkTrainJob({ ...good, trials: "1.5", hours: " " });
    expect("errors" in result && result.errors).toMatchObject({ trials: expect.any(String), hours: expect.any(String) });
  });
});
