// Client-side checks of the train-job form: the same bounds admin enforces (admin/schemas.py), so a user
// sees them before sending; admin still checks and its envelope is shown when it disagrees.
import type { Schemas } from "../api/client";

export interface TrainJobForm {
  app: string;
  trainDatasetId: string;
  valDatasetId: string;
  modelIds: string[];
  trials: string;
  workers: string;
  hours: string;
  task: string;
}

export type FormErrors = Partial<Record<keyof TrainJobForm, string>>;

const APP = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function integer(text: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(text.trim())) return null;
  const value = Number(text);
  return value >= min && value <= max ? value : null;
}

export function checkTrainJob(form: TrainJobForm): { body: Schemas["TrainJobIn"] } | { errors: FormErrors } {
  const errors: FormErrors = {};
  if (!APP.test(form.app)) errors.app = "1–64 letters, digits, '_', '.' or '-', starting with a letter or digit";
  if (!form.trainDatasetId) errors.trainDatasetId = "choose a training dataset";
  if (!form.valDatasetId) errors.valDatasetId = "choose a validation dataset";
  // No model ticked is a declarative job: admin trains every usable template whose declared schema fits.
  if (form.modelIds.length > 20) errors.modelIds = "at most 20 models";
  const trials = integer(form.trials, 1, 10_000);
  if (trials === null) errors.trials = "a whole number from 1 to 10000";
  const workers = integer(form.workers, 1, 64);
  if (workers === null) errors.workers = "a whole number from 1 to 64";
  const hours = Number(form.hours);
  if (!(form.hours.trim() !== "" && Number.isFinite(hours) && hours > 0 && hours <= 8760)) {
    errors.hours = "hours, more than 0 and at most 8760";
  }
  if (!form.task) errors.task = "choose a task";
  if (Object.keys(errors).length > 0) return { errors };
  return {
    body: {
      app: form.app,
      task: form.task,
      train_dataset_id: form.trainDatasetId,
      val_dataset_id: form.valDatasetId,
      model_ids: form.modelIds,
      budget: { MODEL_TRIAL_COUNT: trials!, WORKERS: workers!, TIME_HOURS: hours },
    },
  };
}
