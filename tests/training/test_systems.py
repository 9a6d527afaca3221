"""Systems of PDEs: several outputs, one residual column per equation, one score per point."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from glfpinn import Every, ops, samplers
from glfpinn.config import RunConfig
from glfpinn.problems.base import check_problem, with_reference
from glfpinn.problems.reference.files import ReferenceData
from glfpinn.training import Scorer, make_trainer
from glfpinn.training.evaluator import l2_errors, predict
from glfpinn.training.loss import TrainingLoss
from glfpinn.training.scores import check_score, reduce_residual
from tests.helpers import ToySystem

KW = dict(steps=6, lbfgs_steps=0, lr=1e-2, n_points=64, eval_every=3, compile=False)


class Exact(nn.Module):
    """The toy system's exact solution as a network."""

    def forward(self, x):
        return torch.stack(
            [torch.sin(x[:, 0]) * (1 + x[:, 1]), torch.cos(x[:, 0]) * (1 + x[:, 1])], 1
        )


def test_the_system_declares_outputs_and_its_residual_has_one_column_per_equation():
    problem = check_problem(ToySystem())
    net = problem.build_model((8,), generator=torch.Generator().manual_seed(0))
    x = problem.domain.sample(5, torch.Generator().manual_seed(1))
    assert net(x).shape == (5, 2)
    assert problem.residual(net, x).shape == (5, 2)
    r = problem.residual(Exact(), x.double())
    assert torch.allclose(r, torch.zeros_like(r), atol=1e-12)  # the exact solution zeroes it


@pytest.mark.parametrize("sampler", ["glf-robust", "rad"])
def test_a_system_trains_with_adaptive_samplers_and_reports_per_output_and_pooled_errors(sampler):
    trainer = make_trainer(ToySystem(), samplers.registry.get(sampler), schedule=Every(3), **KW)
    result = trainer.fit()
    assert math.isfinite(result.final_loss) and result.resamples >= 1
    assert set(result.metrics) == {"l2_relative_error_u", "l2_relative_error_v"}
    metrics = trainer.evaluate()
    x, ref = trainer.problem.test_set()
    u = predict(trainer.model, torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    assert u.shape == ref.shape == (121, 2)
    pooled = np.sqrt(((u - ref) ** 2).sum()) / np.sqrt((ref**2).sum())
    assert metrics["l2_relative_error"] == pytest.approx(pooled, rel=1e-9)
    for k, name in enumerate("uv"):
        own = np.linalg.norm(u[:, k] - ref[:, k]) / np.linalg.norm(ref[:, k])
        assert metrics[f"l2_relative_error_{name}"] == pytest.approx(own, rel=1e-9)
    assert set(trainer.problem.condition_misfits(trainer.model, trainer.state.condition_points))


def test_pooled_l2_is_pinnacles_on_a_hand_made_prediction():
    ref = torch.tensor([[1.0, 0.0], [0.0, 2.0], [2.0, 0.0]], dtype=torch.float64)
    u = torch.tensor([[1.0, 1.0], [0.0, 2.0], [2.0, 0.0]], dtype=torch.float64)
    errors = l2_errors(u, ref, ("u", "v"))
    assert errors["pooled"] == pytest.approx(1 / 3)  # sqrt(1) / sqrt(1 + 4 + 4)
    assert errors["u"] == 0.0 and errors["v"] == pytest.approx(0.5)


def test_the_score_reduction_on_a_hand_made_residual():
    r = torch.tensor([[3.0, -4.0], [0.0, -2.0], [1.0, 0.0]])
    assert torch.allclose(reduce_residual(r, "l2"), torch.tensor([5.0, 2.0, 1.0]))
    assert torch.allclose(reduce_residual(r, "max"), torch.tensor([4.0, 2.0, 1.0]))
    weights = check_score({"weights": {"u_x - v": 4.0, "v_x + u": 0.0}}, ToySystem.equations)
    assert weights == (4.0, 0.0)
    assert torch.allclose(reduce_residual(r, weights), torch.tensor([6.0, 0.0, 2.0]))
    assert check_score({"weights": [1, 2]}, ToySystem.equations) == (1.0, 2.0)
    scalar = torch.tensor([-1.0, 2.0])
    assert torch.equal(reduce_residual(scalar, "max"), scalar.abs())
    scorer = Scorer(lambda x: x * torch.tensor([3.0, -4.0]), score="max")
    assert torch.equal(scorer(torch.ones(2, 2)), torch.tensor([4.0, 4.0]))
    scores, grads = scorer.with_grad(torch.ones(2, 2))
    assert torch.equal(scores, torch.tensor([4.0, 4.0])) and grads.shape == (2, 2)


def test_the_loss_weights_equations_and_hands_back_the_score():
    problem = ToySystem()
    net = problem.build_model((8,), generator=torch.Generator().manual_seed(0))
    x = problem.domain.sample(16, torch.Generator().manual_seed(2))
    r = problem.residual(net, x).detach()
    plain = TrainingLoss(problem, net)
    weighted = TrainingLoss(problem, net, equation_weights={"v_x + u": 3.0}, score="max")
    cond = problem.condition_points(8, torch.Generator().manual_seed(3), torch.float32)
    c = problem.condition_loss(net, cond).detach()
    loss, score = plain.eager(x, None, cond)
    assert torch.allclose(loss, (r**2).sum(1).mean() + c)
    assert torch.allclose(score, r.norm(dim=1))
    loss, score = weighted.eager(x, None, cond)
    assert torch.allclose(loss, (r[:, 0] ** 2).mean() + 3 * (r[:, 1] ** 2).mean() + c)
    assert torch.allclose(score, r.abs().amax(1))


class WrongColumns(ToySystem):
    name = "wrong-columns"

    def residual(self, model, x):
        return super().residual(model, x)[:, :1].repeat(1, 3)


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match=r"must return shape \(n, 2\).*got \(4, 3\)") as err:
        check_problem(WrongColumns())
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="has no output 'w'; outputs: u, v") as err:
        ToySystem().output(torch.zeros(3, 2), "w")
    assert "\n" not in str(err.value)
    net = ToySystem().build_model((8,))
    with pytest.raises(ValueError, match="no equation 'w'; the problem's equations") as err:
        TrainingLoss(ToySystem(), net, equation_weights={"w": 2.0})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="score='mean' must be"):
        check_score("mean", ToySystem.equations)
    with pytest.raises(ValueError, match="must give 2 weights"):
        check_score({"weights": [1.0]}, ToySystem.equations)


def test_a_reference_file_gives_one_column_per_output():
    x, ref = ToySystem().test_set()
    data = ReferenceData(points=x, values=ref, source="toy.dat")
    problem = with_reference(ToySystem(), data)
    points, values = problem.reference_set()
    assert values.shape == (121, 2)
    with pytest.raises(ValueError, match=r"values \(n, 2\)"):
        with_reference(ToySystem(), ReferenceData(points=x, values=ref[:, :1], source="one.dat"))


def test_config_round_trips_the_system_keys():
    cfg = RunConfig.from_dict(
        {"problem": "laplace", "equation_weights": {"a": 2.0}, "score": {"weights": [1, 0]}}
    )
    assert cfg.equation_weights == {"a": 2.0} and cfg.score == {"weights": [1, 0]}
    with pytest.raises(ValueError, match="score='mean'"):
        RunConfig.from_dict({"problem": "laplace", "score": "mean"})


def test_a_scalar_problem_keeps_its_exact_loss_scores_and_keys():
    from tests.helpers import Poisson1D

    problem = Poisson1D()
    net = problem.build_model((8,), generator=torch.Generator().manual_seed(0))
    x = problem.domain.sample(16, torch.Generator().manual_seed(2))
    r = problem.residual(net, x)
    for score in ("l2", "max", {"weights": [2.0]}):
        loss, residuals = TrainingLoss(problem, net, score=score).eager(x, None, {})
        assert torch.equal(loss, (r**2).mean()) and torch.equal(residuals, r)
        scorer = Scorer(lambda p: problem.residual(net, p), score=check_score(score))
        assert torch.equal(scorer(x), r.detach().abs())
    trainer = make_trainer(problem, samplers.registry.get("rad"), schedule=Every(3), **KW)
    result = trainer.fit()
    assert result.metrics == {} and not any(
        k.startswith("l2_relative_error_") for k in trainer.evaluate()
    )


class _OpsSystem(ToySystem):
    """The toy system with every output's derivatives from glfpinn.ops in one call (what
    compiles: torch.autograd.grad inside the loss is a double backward torch.compile lacks)."""

    def residual(self, model, x):
        out, grad = ops.outputs_value_and_gradient(model, x)  # (n, 2), (n, 2, 2)
        u, v = self.output(out, "u"), self.output(out, "v")
        du, dv = grad[:, :, self.output_index("u")], grad[:, :, self.output_index("v")]
        return torch.stack([du[:, 0] - v, dv[:, 0] + u], dim=1)


def test_a_system_trains_compiled_as_it_trains_eagerly(real_compile):
    """Trainer(compile=True) on a 2-output, 2-equation system: the step compiles (no fallback
    warning, a compiled graph made) and gives the eager step's losses to float32 rounding."""
    import warnings

    from torch._dynamo.utils import counters

    losses = {}
    for compile in (False, True):
        trainer = make_trainer(
            _OpsSystem(),
            samplers.registry.get("glf-robust"),
            score="max",
            **{**KW, "compile": compile, "hidden": (8,), "seed": 1},
        )
        graphs = counters["stats"]["unique_graphs"]
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a compile fallback warns
            losses[compile] = [float(trainer.optimizer_step()) for _ in range(2)]
        assert (counters["stats"]["unique_graphs"] > graphs) == compile
    assert all(math.isfinite(v) for v in losses[True])
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_a_system_on_a_network_the_engine_follows_is_not_warned_and_one_on_another_is_named(
    monkeypatch,
):
    """A system's MLP is on the fast path (the ops.outputs_* operators take its outputs at
    once); a network the engine cannot follow is named, as for one output; a hard constraint on
    a system's followed network is named as what sends its outputs one by one."""
    import warnings

    from torch import nn

    from glfpinn.nn import Constrained
    from glfpinn.training import network

    monkeypatch.setattr(network, "_WARNED_GENERIC", set())
    problem = ToySystem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        network.build_network(problem, None, seed=0)
    relu = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.warns(UserWarning) as caught:  # (build_network takes user models of one output)
        network._warn_if_generic(relu, 2)
        network._warn_if_generic(relu, 2)  # once per kind
    (warning,) = [w for w in caught if "generic path" in str(w.message)]
    text = str(warning.message)
    assert "the model Sequential is not one the fast derivative engines follow" in text
    assert "differentiate one output" not in text
    with pytest.warns(UserWarning, match="hard constraint .* differentiate its 2 outputs one"):
        network._warn_if_generic(Constrained(problem.build_model((8,)), lambda x, y: y), 2)


def test_a_users_own_network_of_several_outputs_trains_a_system_and_a_wrong_width_is_refused():
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    result = make_trainer(ToySystem(), samplers.get("rad"), model=net, **KW).fit()
    assert math.isfinite(result.final_loss)
    assert set(result.metrics) == {"l2_relative_error_u", "l2_relative_error_v"}
    narrow = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    with pytest.raises(ValueError) as err:
        make_trainer(ToySystem(), samplers.get("rad"), model=narrow, **KW)
    assert (
        "returns (2, 1) for 2 points; it must return shape (n, 2): one column per output (u, v)"
        in str(err.value)
    )
    assert "\n" not in str(err.value)
