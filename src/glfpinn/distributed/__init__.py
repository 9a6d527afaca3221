"""Data-parallel training: the process group a run's ranks share (:mod:`.group`), the strategy
the trainer calls on it (:class:`DataParallel`, :mod:`.data_parallel`) and the local launcher
behind ``glfpinn train --nproc K`` (:mod:`.launch`).

Nothing here is imported by a single-process run: a trainer with the
:class:`~glfpinn.strategy.SingleProcess` strategy never touches ``torch.distributed``. Nothing
here imports :mod:`glfpinn.training` either: both sides share :mod:`glfpinn.strategy`.
"""

from __future__ import annotations

from glfpinn.distributed.data_parallel import DataParallel
from glfpinn.distributed.group import ProcessGroup, init_from_env, world_size_from_env
from glfpinn.distributed.launch import launch

__all__ = [
    "DataParallel",
    "ProcessGroup",
    "init_from_env",
    "launch",
    "world_size_from_env",
]
