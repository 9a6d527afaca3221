import os
import tempfile

import pytest
import torch

# Reference solutions are cached on disk; tests share one cache per session, never the user's.
os.environ.setdefault(
    "GLFPINN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "glfpinn-test-cache")
)
# Small tensors: one thread avoids pool overhead and contention on shared CPUs.
torch.set_num_threads(1)
# Training is compiled by default, and compiling each of the suite's hundreds of small runs would
# take most of its time: torch's own switch makes torch.compile a no-op here (the rest of a
# compiled run's path, fused optimizer and deferred divergence check included, still runs) and
# in the processes tests start. Tests of compiling itself turn it back on with ``real_compile``.
# (torch reads the variable when its compiler is first imported, later than this.)
os.environ["TORCH_COMPILE_DISABLE"] = "1"


@pytest.fixture
def real_compile(monkeypatch):
    """torch.compile compiling for real within one test."""
    # imported before the switch is lifted: torch reads it when its compiler is first imported,
    # and would otherwise compile for real in every later test of the session
    import torch._dynamo  # noqa: F401

    monkeypatch.delenv("TORCH_COMPILE_DISABLE")
    with torch._dynamo.config.patch(disable=False):
        yield
