"""When to resample, kept apart from what to sample."""

from __future__ import annotations

import abc
from typing import final

from glfpinn._checks import check_positive
from glfpinn._params import Params

__all__ = ["Schedule", "Every", "Never"]


class Schedule(Params, abc.ABC):
    @abc.abstractmethod
    def due(self, step: int) -> bool:
        """Whether to resample before optimizer step ``step`` (0-based)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


@final
class Every(Schedule):
    """Resample before steps start, start + period, start + 2 period, ... (never before the
    first step); ``start`` 0: period, 2 period, ...; with ``stop``, none from step ``stop`` on
    (the set stays fixed from there: for a final quasi-Newton stage, say).

    A plan with rounds resamples at each round's start: ``Every(round_steps, start=warm_up)``.
    """

    def __init__(self, period: int, start: int = 0, stop: int | None = None) -> None:
        check_positive("resample period", period)
        check_positive("resample start", start, allow_zero=True)
        if stop is not None:
            check_positive("resample stop", stop)
        self.period = int(period)
        self.start = int(start)
        self.stop = None if stop is None else int(stop)

    def due(self, step: int) -> bool:
        if self.stop is not None and step >= self.stop:
            return False
        return step > 0 and step >= self.start and (step - self.start) % self.period == 0


@final
class Never(Schedule):
    def due(self, step: int) -> bool:
        return False
