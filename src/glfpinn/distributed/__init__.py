"""Data-parallel training: the process group a run's ranks share (:mod:`.group`).

Nothing here is imported by a single-process run: a trainer without a group never touches
``torch.distributed``.
"""

from __future__ import annotations

from glfpinn.distributed.group import ProcessGroup, init_from_env, world_size_from_env

__all__ = ["ProcessGroup", "init_from_env", "world_size_from_env"]
