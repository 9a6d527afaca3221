import os
import tempfile

import torch

# Reference solutions are cached on disk; tests share one cache per session, never the user's.
os.environ.setdefault("GLFPINN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "glfpinn-test-cache"))
# Two cores here: threads beyond that only add contention.
torch.set_num_threads(min(2, torch.get_num_threads()))
