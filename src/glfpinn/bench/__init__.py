"""Benchmark grids: run problem x sampler x seed cells locally or on Ray, then report."""

from glfpinn.bench.executors import EXECUTORS, run_bench, run_cell
from glfpinn.bench.grid import Bench, Cell, load_bench
from glfpinn.bench.plots import write_plots
from glfpinn.bench.report import collect, summarise, write_report

__all__ = [
    "EXECUTORS",
    "Bench",
    "Cell",
    "collect",
    "load_bench",
    "run_bench",
    "run_cell",
    "summarise",
    "write_plots",
    "write_report",
]
