"""glfpinn's samplers inside other PINN frameworks.

``glfpinn.integrations.deepxde.Resampler`` is a DeepXDE callback and
``glfpinn.integrations.pina.Resampler`` a Lightning callback for PINA solvers; each moves the
framework's own collocation points with any glfpinn sampler. Importing this package imports
neither framework: each submodule imports its own when it is imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["deepxde", "pina"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
