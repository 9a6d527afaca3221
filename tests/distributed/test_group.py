"""Leaving the group: after an orderly end every rank waits for the others before it tears its
connections down (a peer still writing the run's last files is not cut off)."""

from __future__ import annotations

import time
from pathlib import Path

from ranks import run_ranks


def _leave_together(group, out: str) -> bool:
    late = Path(out) / "rank0-was-here"
    if group.rank == 0:
        time.sleep(0.3)  # rank 0 is still finishing when rank 1 asks to leave
        late.write_text("")
    group.close(together=True)
    return late.exists()  # on rank 1: only if close waited for rank 0


def test_an_orderly_close_waits_for_every_rank(tmp_path):
    assert run_ranks(_leave_together, tmp_path, str(tmp_path)) == [True, True]
