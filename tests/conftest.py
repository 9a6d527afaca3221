import os
import tempfile

import torch

# Reference solutions are cached on disk; tests share one cache per session, never the user's.
os.environ.setdefault(
    "GLFPINN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "glfpinn-test-cache")
)
# Small tensors: one thread avoids pool overhead and contention on shared CPUs.
torch.set_num_threads(1)
