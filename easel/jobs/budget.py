"""What a job may spend: parsed once, with one set of defaults, wherever a budget is read.

The REST API takes these as request bodies (upper-case keys, as in SINGA-Auto) and stores
``model_dump(exclude_none=True)`` (an optional field left unset is not recorded); services read the stored
dict back with :meth:`from_stored`, which ignores keys a later version may have added.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Budget(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid", populate_by_name=True, frozen=True)

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> Self:
        """The budget recorded on a job row (unknown keys ignored; missing ones take the defaults)."""
        return cls.model_validate({k: v for k, v in (stored or {}).items() if k in cls.model_fields})


class TrainBudget(_Budget):
    """How much a train job may spend."""

    MODEL_TRIAL_COUNT: int = Field(default=5, ge=1, le=10_000, description="trials per model")
    TIME_HOURS: float = Field(default=1.0, gt=0, le=24 * 365, description="wall-clock budget")
    GPU_COUNT: int = Field(default=0, ge=0, le=1024, description="GPUs for the job's workers")
    WORKERS: int = Field(default=1, ge=1, le=64, description="train workers per model")
    EARLY_STOP: bool = Field(default=True, description="let the advisor stop hopeless trials early")
    PRUNER: Literal["median", "asha", "asha_promote", "none"] = Field(
        default="median", description="how hopeless trials are found after each epoch (with EARLY_STOP): the "
                                      "median rule, asynchronous successive halving that stops trials (asha) or "
                                      "pauses them at its rungs and resumes the best (asha_promote), or none")
    ASHA_MIN_EPOCHS: int | None = Field(
        default=None, ge=1, le=10_000, description="ASHA's minimum resource (grace period): epochs before a trial's "
                                                   "first rung; unset: EASEL_ASHA_MIN_EPOCHS")
    ASHA_REDUCTION_FACTOR: int | None = Field(
        default=None, ge=2, le=100, description="ASHA's η: rungs at ASHA_MIN_EPOCHS·ηᵏ epochs, the best 1/η of each "
                                                "goes on; unset: EASEL_ASHA_REDUCTION_FACTOR")
    ASHA_BRACKETS: int | None = Field(
        default=None, ge=1, le=10, description="asynchronous Hyperband with asha_promote: brackets of ASHA with "
                                               "minimum resource ASHA_MIN_EPOCHS·ηʲ (j < brackets), trials dealt "
                                               "in Hyperband's shares; 1: one ASHA; unset: EASEL_ASHA_BRACKETS")
    MOP: bool = Field(default=False, description="model hopper parallelism: shard the training data one shard "
                                                 "per worker and let trials hop between workers unit by unit")
    SEED: int | None = Field(default=None, ge=0, le=2**31 - 1,
                             description="the search's random seed: the same seed proposes the same knob sets in the "
                                         "same order (a reproducible search); unset: a fresh draw")

    @model_validator(mode="after")
    def _asha_fields_need_asha(self) -> Self:
        if self.PRUNER not in ("asha", "asha_promote") and (self.ASHA_MIN_EPOCHS is not None
                                                             or self.ASHA_REDUCTION_FACTOR is not None):
            raise ValueError(f"ASHA_MIN_EPOCHS and ASHA_REDUCTION_FACTOR apply to PRUNER 'asha' or 'asha_promote' "
                             f"only, not {self.PRUNER!r}")
        if self.PRUNER != "asha_promote" and self.ASHA_BRACKETS is not None:
            raise ValueError(f"ASHA_BRACKETS applies to PRUNER 'asha_promote' only, not {self.PRUNER!r}")
        eta, brackets = self.ASHA_REDUCTION_FACTOR, self.ASHA_BRACKETS
        if brackets and eta and eta ** (brackets - 1) > 10_000:
            # the last bracket would first judge a trial after ASHA_MIN_EPOCHS·ηᴮ⁻¹ epochs: beyond any training
            raise ValueError("ASHA_BRACKETS: ASHA_REDUCTION_FACTOR^(ASHA_BRACKETS-1) must be at most 10000")
        if self.PRUNER == "asha_promote" and self.MOP:
            # MOP places single units on shards; pausing at rungs is built for trials that own their worker.
            raise ValueError("PRUNER 'asha_promote' does not combine with MOP; use PRUNER 'asha' with MOP")
        return self

    @property
    def seconds(self) -> float:
        return self.TIME_HOURS * 3600.0


class InferenceBudget(_Budget):
    """What an inference job's request may ask for, beside its worker count."""

    GPU_COUNT: int = Field(default=0, ge=0, le=1024)


class InferenceJobBudget(InferenceBudget):
    """What an inference job records: the request's budget and its number of inference workers."""

    WORKERS: int = Field(default=1, ge=1, le=64, description="inference workers")


__all__ = ["InferenceBudget", "InferenceJobBudget", "TrainBudget"]
