import pytest

import glfpinn
from glfpinn import GLF, RAD, Every
from glfpinn.training.costs import Costs
from tests.helpers import Poisson1D


def _run(sampler, **kw):
    # glfpinn.train: the entry point that owns the process resets the peak for its run
    return glfpinn.train(Poisson1D(), sampler, steps=21, schedule=Every(20), eval_every=21, **kw)


def test_two_runs_in_one_process_report_their_own_peak_memory():
    """The first run scores a million candidates in one chunk (over 1 GB of activations and
    derivatives); the second, run afterwards in the same process, scores nothing. A
    process-wide peak would give the second at least the first's."""
    big = _run(RAD(n_candidates=1_000_000), score_chunk=1_000_000)
    small = _run(GLF())
    assert small.peak_memory_mb < big.peak_memory_mb - 500


def test_costs_round_trip_through_their_state_dict():
    costs = Costs(residual_evals=5, sampling_time_s=1.5, resamples=2)
    copy = Costs()
    copy.load_state_dict(costs.state_dict())
    assert copy == costs


@pytest.mark.parametrize("key", ["residual_evals", "resamples", "lbfgs_restarts"])
def test_count_costs_stay_integers_after_loading(key):
    costs = Costs()
    costs.load_state_dict({key: 3.0})
    assert type(getattr(costs, key)) is int
