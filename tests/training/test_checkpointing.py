"""A state that does not fit the run is refused at ``load_state_dict``, in one line, before
anything of it is loaded: another dtype, dimension or number of points would otherwise fail
(or silently change the run) steps later."""

import pytest
import torch

from glfpinn import RAD
from glfpinn.training import make_trainer
from tests.helpers import Poisson1D


def _trainer(sampler=None, **kw):
    settings = {"steps": 2, "n_points": 16, "hidden": (4,), "compile": False, "eval_every": 2}
    return make_trainer(Poisson1D(), sampler or RAD(n_candidates=64), **{**settings, **kw})


@pytest.fixture(scope="module")
def saved():
    trainer = _trainer()
    trainer.fit()
    return trainer.state_dict()


def _unchanged(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()], trainer.state.points.clone()


def test_a_state_of_another_dtype_is_refused_before_loading(saved):
    trainer = _trainer(dtype="float64")
    params, points = _unchanged(trainer)
    with pytest.raises(
        ValueError, match="the state's points are float32, this run trains in float64"
    ):
        trainer.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(params, trainer.model.parameters()))
    assert torch.equal(points, trainer.state.points)


def test_a_state_of_another_point_count_is_refused(saved):
    with pytest.raises(ValueError, match="the state holds 16 training points, this run 32"):
        _trainer(n_points=32).load_state_dict(saved)


def test_a_state_whose_weights_do_not_match_its_points_is_refused(saved):
    damaged = {**saved, "last_residuals": torch.zeros(3)}
    with pytest.raises(ValueError, match="last_residuals has 3 rows for 16 points"):
        _trainer().load_state_dict(damaged)


def test_a_state_without_points_is_refused(saved):
    damaged = {k: v for k, v in saved.items() if k != "points"}
    with pytest.raises(ValueError, match="the state holds no training points"):
        _trainer().load_state_dict(damaged)


def test_a_state_that_fits_loads(saved):
    trainer = _trainer()
    trainer.load_state_dict(saved)
    assert trainer.state.step == saved["step"]
