"""glfpinn samplers inside real DeepXDE training: DeepXDE's Allen-Cahn set-up (hard constraint,
3 x 64 tanh, PyTorch backend) at a tiny budget, with our callback and with PDEPointResampler."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import torch

os.environ.setdefault("DDE_BACKEND", "pytorch")
dde = pytest.importorskip("deepxde")

from glfpinn import GLF, PACMANN, RAD  # noqa: E402
from glfpinn.domains import Box, Region  # noqa: E402
from glfpinn.integrations.deepxde import Resampler, _WeightedPDE, domain_of  # noqa: E402

N = 200  # PDE points: small, so that a test trains in about a second
PERIOD = 10
ITERATIONS = 40  # four resamples


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def allen_cahn_model(seed: int = 0):
    """DeepXDE's Allen-Cahn example (Wu et al.'s RAD set-up) with N points."""
    dde.config.set_random_seed(seed)
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        u_t = dde.grad.jacobian(y, x, i=0, j=1)
        u_xx = dde.grad.hessian(y, x, i=0, j=0)
        return u_t - 0.001 * u_xx + 5 * (y**3 - y)

    data = dde.data.TimePDE(geom, pde, [], num_domain=N, train_distribution="pseudo")
    net = dde.nn.FNN([2] + [64] * 3 + [1], "tanh", "Glorot normal")
    net.apply_output_transform(
        lambda x, y: (
            x[:, 0:1] ** 2 * torch.cos(math.pi * x[:, 0:1]) + x[:, 1:2] * (1 - x[:, 0:1] ** 2) * y
        )
    )
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return model, geom


def adam_steps(model) -> int:
    """Adam's own step counter: it restarts at 0 if the optimizer is rebuilt."""
    return int(next(iter(model.opt.state.values()))["step"])


def train(model, callback, iterations=ITERATIONS):
    model.train(iterations=iterations, callbacks=[callback], display_every=10**6, verbose=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Resampler("glf", period=PERIOD),
        lambda: dde.callbacks.PDEPointResampler(period=PERIOD),
    ],
    ids=["glf", "PDEPointResampler"],
)
def test_points_change_stay_inside_and_keep_their_number(make):
    model, geom = allen_cahn_model()
    before = model.data.train_x_all.copy()
    train(model, make())
    after = model.data.train_x_all
    assert after.shape == before.shape
    assert geom.geometry.inside(after[:, :1]).all() and geom.timedomain.inside(after[:, 1:]).all()
    # Fresh points: continuous draws (uniform or Gaussian) never repeat an old point.
    assert not set(map(tuple, after.tolist())) & set(map(tuple, before.tolist()))
    # The next training batch is the new set (this set-up has no BC points).
    np.testing.assert_array_equal(model.data.train_next_batch()[0], after)


def test_pacmann_moves_the_points_along_the_residual_gradient():
    # PACMANN differentiates the residual with respect to x: the callback's residual must stay
    # differentiable in the points it is given
    model, geom = allen_cahn_model()
    before = model.data.train_x_all.copy()
    cb = Resampler(PACMANN(n_moves=2), period=PERIOD)
    train(model, cb)
    after = model.data.train_x_all
    assert after.shape == before.shape
    assert geom.geometry.inside(after[:, :1]).all() and geom.timedomain.inside(after[:, 1:]).all()
    assert (np.abs(after - before).max(axis=1) > 0).mean() > 0.5  # moved, not redrawn
    assert cb.residual_evals > 0


def test_glf_scores_only_the_current_points():
    model, _ = allen_cahn_model()
    cb = Resampler(GLF(), period=PERIOD)
    train(model, cb)
    assert cb.costs.resamples == ITERATIONS // PERIOD
    # One evaluation of the N current points per resample, no candidate scored.
    assert cb.residual_evals == cb.costs.resamples * N


def test_rad_scores_its_candidates_only():
    model, _ = allen_cahn_model()
    cb = Resampler(RAD(n_candidates=1000), period=PERIOD)
    train(model, cb)
    assert cb.residual_evals == cb.costs.resamples * 1000


def test_training_continues_with_the_same_optimizer():
    model, _ = allen_cahn_model()
    cb = Resampler("glf", period=PERIOD)
    train(model, cb, iterations=PERIOD)
    opt, steps = model.opt, adam_steps(model)
    assert steps == PERIOD and cb.costs.resamples == 1
    train(model, cb, iterations=2 * PERIOD)
    assert model.opt is opt  # not rebuilt: its moments survive the resamples
    assert adam_steps(model) == 3 * PERIOD
    assert cb.costs.resamples == 3
    assert model.train_state.step == 3 * PERIOD


def test_a_seed_reproduces_the_points():
    runs = []
    for _ in range(2):
        model, _ = allen_cahn_model(seed=3)
        train(model, Resampler("glf", period=PERIOD, seed=7))
        runs.append(model.data.train_x_all.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


class _SeesTheWrapper(dde.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self):
        self.seen.append(isinstance(self.model.data.pde, _WeightedPDE))


def test_importance_weights_reach_the_loss():
    model, _ = allen_cahn_model()
    cb, spy = Resampler(GLF(importance_weights=True), period=PERIOD), _SeesTheWrapper()
    model.train(iterations=PERIOD, callbacks=[cb, spy], display_every=10**6, verbose=0)
    assert all(spy.seen) and model.data.pde is cb._pde  # installed while training only
    assert cb.weights is not None and cb.weights.shape == (N,)
    # In training mode the PDE rows are scaled by sqrt(w), so DeepXDE's MSE is mean(w r^2).
    x = torch.as_tensor(model.data.train_x).requires_grad_(True)
    model.net.train()
    plain = cb._pde(x, model.net(x)).detach()[:, 0]
    weighted = _WeightedPDE(cb._pde, cb)(x, model.net(x)).detach()[:, 0]
    torch.testing.assert_close(weighted, plain * cb.weights.sqrt(), rtol=1e-5, atol=0)


def test_boundary_points_are_kept():
    dde.config.set_random_seed(0)
    geom = dde.geometry.Interval(0, 1)
    bc = dde.icbc.DirichletBC(geom, lambda x: 0 * x, lambda x, on: on)
    data = dde.data.PDE(
        geom,
        lambda x, y: dde.grad.hessian(y, x) + 1,
        bc,
        num_domain=50,
        num_boundary=2,
        train_distribution="pseudo",
    )
    model = dde.Model(data, dde.nn.FNN([1, 16, 1], "tanh", "Glorot normal"))
    model.compile("adam", lr=1e-3)
    bc_points = data.train_x_bc.copy()
    train(model, Resampler("r3", period=5), iterations=10)
    np.testing.assert_array_equal(data.train_x_bc, bc_points)
    np.testing.assert_array_equal(data.train_x, np.vstack([bc_points, data.train_x_all]))
    assert data.train_x_all.shape == (52, 1) and geom.inside(data.train_x_all).all()


def test_other_backends_are_refused(monkeypatch):
    model, _ = allen_cahn_model()
    monkeypatch.setattr(dde.backend, "backend_name", "jax")
    with pytest.raises(ValueError, match="pytorch backend only; DeepXDE uses 'jax'"):
        model.train(iterations=1, callbacks=[Resampler()], verbose=0)


def test_geometry_wrapping():
    box = domain_of(
        dde.geometry.GeometryXTime(
            dde.geometry.Rectangle([0, 0], [1, 2]), dde.geometry.TimeDomain(0, 3)
        )
    )
    assert isinstance(box, Box) and box.bounds[1].tolist() == [1.0, 2.0, 3.0]
    disk = domain_of(dde.geometry.Disk([0, 0], 1))
    assert isinstance(disk, Region)
    gen = torch.Generator().manual_seed(0)
    x = disk.sample(500, gen)
    assert x.shape == (500, 2) and bool((x.norm(dim=1) <= 1).all())
    far = torch.tensor([[3.0, 0.0], [0.2, 0.1], [-0.9, 0.9]])
    y = disk.reflect(far, gen)
    assert bool((y.norm(dim=1) <= 1).all())
    assert torch.equal(y[1], far[1])  # inside points are unchanged


def test_bad_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="period"):
        Resampler("glf", period=0)
    with pytest.raises(ValueError, match="sampler"):
        Resampler(3.0)
    assert repr(Resampler("glf", period=5)).startswith("Resampler(sampler=GLF(")


def test_resamples_during_lbfgs_by_iteration_count(monkeypatch):
    """DeepXDE calls callbacks between L-BFGS chunks of iter_per_step iterations: with chunks
    of PERIOD the callback resamples after each, keeping the same L-BFGS optimizer."""
    model, _ = allen_cahn_model()
    cb = Resampler("glf-robust", period=PERIOD)
    train(model, cb, iterations=PERIOD)
    assert cb.costs.resamples == 1
    dde.optimizers.set_LBFGS_options(maxiter=4 * PERIOD)
    monkeypatch.setitem(dde.optimizers.config.LBFGS_options, "iter_per_step", PERIOD)
    model.compile("L-BFGS")
    opt = model.opt
    model.train(callbacks=[cb], display_every=10**6, verbose=0)
    lbfgs_iterations = int(model.train_state.step) - PERIOD
    assert lbfgs_iterations >= 2 * PERIOD  # it did not converge at once on 200 points
    assert cb.costs.resamples == 1 + lbfgs_iterations // PERIOD
    assert model.opt is opt
    dde.optimizers.set_LBFGS_options()


def test_coverage_is_logged_and_a_collapse_warns_once():
    """Every resample's coverage is in history; a threshold above every coverage (plumbing, not
    the collapse itself: tests/training has that) warns once, a healthy default is silent."""
    from glfpinn.samplers.coverage import CollapseWarning

    model, _ = allen_cahn_model()
    cb = Resampler("glf", period=PERIOD, coverage_threshold=0.999)
    with pytest.warns(CollapseWarning, match="'glf' collapsed") as caught:
        train(model, cb)
    assert len([w for w in caught if issubclass(w.category, CollapseWarning)]) == 1
    assert len(cb.history) == cb.costs.resamples == 4
    assert all(0 < h["coverage"] < 1.2 for h in cb.history)
    model, _ = allen_cahn_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        train(model, Resampler("uniform-resample", period=PERIOD))
    with pytest.raises(ValueError, match="coverage_threshold"):
        Resampler("glf", coverage_threshold=1.0)
