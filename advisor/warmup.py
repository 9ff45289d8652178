"""The advisor's one-off first-use costs, paid once in its warm parent (:mod:`easel.launcher.zygote`) rather
than in every advisor forked from it: SQLAlchemy configures its mappers on the first query (≈ 0.08 s of CPU),
and scikit-optimize's first GP set-up and ask cost ≈ 0.06 s more than later ones. Several advisors start
together when several users submit at once, on the same cores."""

from __future__ import annotations

from sqlalchemy.orm import configure_mappers

import easel.db.models  # noqa: F401 - the mappers to configure
from advisor.samplers import make_sampler
from advisor.space import space_from_knob_config
from easel.model import CategoricalKnob, FloatKnob, IntegerKnob, knob_config_to_dict


def warm_up() -> None:
    configure_mappers()
    knobs = {"lr": FloatKnob(1e-4, 1.0, log_scale=True), "depth": IntegerKnob(1, 4),
             "width": CategoricalKnob([64, 128])}
    make_sampler("gp", space_from_knob_config(knob_config_to_dict(knobs)), seed=0).ask()


__all__ = ["warm_up"]
