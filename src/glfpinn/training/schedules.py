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
    """Resample before steps period, 2 period, ... (never before the first step)."""

    def __init__(self, period: int) -> None:
        check_positive("resample period", period)
        self.period = int(period)

    def due(self, step: int) -> bool:
        return step > 0 and step % self.period == 0


@final
class Never(Schedule):
    def due(self, step: int) -> bool:
        return False
