"""The data term of an inverse problem, per output: the three forms of ``observations()``."""

import numpy as np
import pytest
import torch
from torch import nn

from glfpinn import Stage, UniformResample
from glfpinn.training import make_trainer
from glfpinn.training.observations import data_loss, read_observations
from tests.helpers import ToySystem

TRUE_K = 1.5


def _exact(x: np.ndarray, k: float = TRUE_K) -> np.ndarray:
    """u = sin(k x)(1 + y), v = cos(k x)(1 + y): solves u_x - k v = 0, v_x + k u = 0."""
    return np.stack([np.sin(k * x[:, 0]), np.cos(k * x[:, 0])], 1) * (1 + x[:, 1:2])


class FrequencyInverse(ToySystem):
    """ToySystem with an unknown frequency k (true 1.5, guess 1), v measured, u not."""

    name = "toy-system-inverse"
    unknowns = {"k": 1.0}

    def frequency(self):
        return self.unknown("k")

    def observations(self):
        x = np.random.default_rng(0).uniform(0, 1, size=(60, 2))
        return {"v": (x, _exact(x)[:, 1])}


class Columns(nn.Module):
    """A fixed 'network' that returns given columns: (x, 2 - x) for x = the first input."""

    def forward(self, x):
        return torch.stack([x[:, 0], 2 - x[:, 0]], 1)


def test_a_system_s_coefficient_is_recovered_from_one_measured_output():
    """Only v is measured (60 points, exact): k is identifiable through the equations. This
    budget lands within 0.04% on seeds 0-2; 3% fails a k left at its guess (33% off) by far."""
    plan = [Stage("adam", 400, lr=1e-2), Stage("lbfgs", 150)]
    result = make_trainer(
        FrequencyInverse(), UniformResample(), plan=plan, n_points=200, hidden=(24, 24), seed=0
    ).fit()
    assert abs(result.unknowns["k"] / TRUE_K - 1) < 0.03


def test_the_three_forms_give_each_output_its_own_mean_square():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    model = Columns()  # u = x, v = 2 - x at these points: u = (0, 1, 0.5), v = (2, 1, 1.5)

    class Both(ToySystem):
        def observations(self):  # every output at the same points, misfit 1 for u, 0 for v
            return x, np.stack([x[:, 0] + 1, 2 - x[:, 0]], 1)

    class ByName(ToySystem):
        def observations(self):  # u at 3 points (misfit 1), v at the first point only (2)
            return {"u": (x, x[:, 0] + 1), "v": (x[:1], np.array([0.0]))}

    both = read_observations(Both(), torch.float64, torch.device("cpu"))
    assert float(data_loss(model, both)) == pytest.approx(1.0 + 0.0)
    by_name = read_observations(ByName(), torch.float64, torch.device("cpu"))
    assert [m.columns for m in by_name] == [(0,), (1,)]
    assert float(data_loss(model, by_name)) == pytest.approx(1.0 + 4.0)


@pytest.mark.parametrize(
    "observed, match",
    [
        ({"w": (np.zeros((3, 2)), np.zeros(3))}, "has no output 'w'; outputs: u, v"),
        ((np.zeros((3, 2)), np.zeros(3)), r"values of shape \(3,\) for 2 output"),
        ((np.zeros((3, 2)), np.zeros((3, 3))), r"allowed: \(m, 2\) or a mapping by output"),
        ({"u": (np.zeros((3, 2)), np.zeros(4))}, "3 points and 4 values"),
        ({"u": (np.zeros((3, 1)), np.zeros(3))}, r"must give points \(m, 2\)"),
        ({"u": (np.zeros((3, 2)), np.array([0.0, np.nan, 1.0]))}, "NaN or infinite"),
    ],
)
def test_bad_observations_of_a_system_are_one_line_errors(observed, match):
    class Bad(ToySystem):
        def observations(self):
            return observed

    with pytest.raises(ValueError, match=match) as info:
        make_trainer(Bad(), UniformResample(), steps=2, compile=False)
    assert "\n" not in str(info.value)
