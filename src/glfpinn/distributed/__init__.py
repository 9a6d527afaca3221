"""Data-parallel training: the process group a run's ranks share (:mod:`.group`) and the local
launcher behind ``glfpinn train --nproc K`` (:mod:`.launch`).

Nothing here is imported by a single-process run: a trainer without a group never touches
``torch.distributed``.
"""

from __future__ import annotations

from glfpinn.distributed.group import ProcessGroup, init_from_env, world_size_from_env
from glfpinn.distributed.launch import launch

__all__ = ["ProcessGroup", "init_from_env", "world_size_from_env", "launch"]
