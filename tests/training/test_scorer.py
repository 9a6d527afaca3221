import pytest
import torch

from glfpinn import Scorer
from glfpinn.training.costs import Costs


def _linear(x):
    return 3 * x[:, 0] - x[:, 1]


def test_scorer_counts_points_and_gives_the_gradient_of_r_squared():
    fn = Scorer(_linear)
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert torch.equal(fn(x), torch.tensor([1.0, 1.0]))
    r, g = fn.with_grad(x)
    assert torch.equal(r, torch.tensor([1.0, 1.0]))
    # d(r^2)/dx = 2 r (3, -1) with r = (1, -1).
    assert torch.equal(g, torch.tensor([[6.0, -2.0], [-6.0, 2.0]]))
    assert fn.evals == 4 and fn.costs.scoring_time_s > 0


def test_chunks_give_the_same_residuals_and_keep_no_graph():
    x = torch.rand(1001, 2, generator=torch.Generator().manual_seed(0))
    w = torch.tensor([1.5], requires_grad=True)
    whole = Scorer(lambda y: w * torch.sin(y).sum(1), chunk_size=5000)(x)
    chunked = Scorer(lambda y: w * torch.sin(y).sum(1), chunk_size=100)(x)
    assert torch.equal(whole, chunked) and not chunked.requires_grad
    r, g = Scorer(lambda y: w * torch.sin(y).sum(1), chunk_size=100).with_grad(x)
    assert g.shape == (1001, 2) and not g.requires_grad


def test_a_shared_costs_object_accumulates_every_scorers_evaluations():
    costs = Costs()
    Scorer(_linear, costs=costs)(torch.zeros(7, 2))
    Scorer(_linear, costs=costs).with_grad(torch.zeros(5, 2))
    assert costs.residual_evals == 12


def test_empty_input_and_bad_chunk_size():
    fn = Scorer(_linear)
    assert fn(torch.zeros(0, 2)).shape == (0,)
    assert fn.with_grad(torch.zeros(0, 2))[1].shape == (0, 2)
    with pytest.raises(ValueError, match="chunk_size=0 is not allowed"):
        Scorer(_linear, chunk_size=0)
