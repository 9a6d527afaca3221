"""One run on 2 processes, from Python: RAD on Allen-Cahn, its points split between the ranks,
its 20,000 candidates scored half on each, its draws made as one process would make them.

    python examples/data_parallel.py                       # starts its 2 processes (1 min)
    torchrun --nproc-per-node 2 examples/data_parallel.py  # the 2-process run alone, by torchrun

Each rank runs ``train``: it joins the process group that torchrun's environment describes
(``init_from_env``), builds the same Trainer as a single process would, with ``group=``, and
trains its slice of the collocation points; rank 0 writes the run directory. Afterwards the
script trains the same run in one process. RAD draws from the whole set with the
single-process stream, so from the same residuals the two runs make the same draws; but a mean
over N points and two means over N/2 round differently in float32, and over thousands of
steps those differences grow, so the two errors agree in size, not digit for digit (the full
run printed L2 = 0.496 on 2 processes and 0.518 on 1; at the test suite's 30 steps they agree
to 1e-3, and tests/distributed/test_sharding.py shows the draws equal in float64). On K GPUs,
give ``init_from_env("cuda")`` and start one process per card.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from glfpinn import RAD, Trainer, problems, record
from glfpinn.distributed import init_from_env, launch
from glfpinn.training import Every, make_trainer


def settings(tiny: bool) -> dict:
    if tiny:  # the test suite's budget
        return {"steps": 30, "n_points": 200, "schedule_every": 10, "candidates": 2000}
    return {"steps": 3000, "n_points": 2000, "schedule_every": 500, "candidates": 20000}


def trainer(tiny: bool, group=None) -> Trainer:
    s = settings(tiny)
    return make_trainer(
        problems.get("allen-cahn"),
        RAD(n_candidates=s["candidates"]),
        steps=s["steps"],
        n_points=s["n_points"],
        schedule=Every(s["schedule_every"]),
        seed=0,
        compile=not tiny,
        group=group,
    )


def train(out: Path, tiny: bool) -> None:
    """What every rank runs."""
    group = init_from_env("cpu")  # None in a single process
    try:
        record(trainer(tiny, group), out, mode="overwrite").fit()
        if group is not None:
            group.barrier()  # rank 0 has written the run's last files
    finally:
        if group is not None:
            group.close()


def main(tiny: bool = False) -> dict:
    out = Path(tempfile.mkdtemp(prefix="glfpinn-ddp-")) / "rad-2"
    status = launch([str(out), *(["--tiny"] if tiny else [])], 2, program=(__file__,))
    if status:
        raise SystemExit(status)
    two = json.loads((out / "result.json").read_text())
    one = trainer(tiny).fit().to_dict()
    print(f"2 processes: L2 = {two['l2_relative_error']:.4e} in {two['wall_time_s']:.1f} s")
    print(f"1 process:   L2 = {one['l2_relative_error']:.4e} in {one['wall_time_s']:.1f} s")
    return {"two": two, "one": one, "out": out}


if __name__ == "__main__":
    if "WORLD_SIZE" in os.environ:  # a rank, started by launch() or torchrun
        args = [a for a in sys.argv[1:] if a != "--tiny"]
        default = Path(tempfile.gettempdir()) / "glfpinn-ddp-example"
        train(Path(args[0]) if args else default, "--tiny" in sys.argv)
    else:
        main(tiny="--tiny" in sys.argv)
