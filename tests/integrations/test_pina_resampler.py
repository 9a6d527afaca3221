"""glfpinn samplers inside real PINA training: PINA's Poisson problem on the unit square, a small
PINN, tiny budgets; our callback against PINA's own R3Refinement."""

from __future__ import annotations

import warnings

import pytest
import torch

pina = pytest.importorskip("pina")

from lightning.pytorch import Callback  # noqa: E402
from pina import Trainer  # noqa: E402
from pina.callback import R3Refinement  # noqa: E402
from pina.model import FeedForward  # noqa: E402
from pina.problem.zoo import Poisson2DSquareProblem  # noqa: E402
from pina.solver import PhysicsInformedSingleModelSolver  # noqa: E402

from glfpinn import GLF, PACMANN, RARD  # noqa: E402
from glfpinn.integrations.pina import Resampler  # noqa: E402

N, N_BOUNDARY = 200, 40
PERIOD, EPOCHS = 5, 20  # batch_size=None: one step per epoch, four resamples


@pytest.fixture(autouse=True)
def _quiet_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's tips about loggers and checkpoints
        yield
    torch.set_num_threads(threads)


class BatchSpy(Callback):
    """The interior points every training step really used."""

    def __init__(self):
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(dict(batch)["D"]["input"].as_subclass(torch.Tensor).clone())


def fit(callback, tmp_path, epochs=EPOCHS, seed=0):
    torch.manual_seed(seed)  # PINA's discretisation and the network's initialisation
    problem = Poisson2DSquareProblem()
    problem.discretise_domain(N, "random", domains=["D"])
    problem.discretise_domain(N_BOUNDARY, "random", domains=["boundary"])
    model = FeedForward(input_dimensions=2, output_dimensions=1, inner_size=32, n_layers=2)
    solver = PhysicsInformedSingleModelSolver(problem=problem, model=model)
    spy = BatchSpy()
    trainer = Trainer(
        solver=solver,
        max_epochs=epochs,
        accelerator="cpu",
        batch_size=None,
        train_size=1.0,
        val_size=0.0,
        test_size=0.0,
        callbacks=[callback, spy],
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.train()
    return problem, trainer, spy


def interior(problem):
    return problem.conditions["D"].data.input.as_subclass(torch.Tensor)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Resampler("glf", period=PERIOD),
        # moves points along d(r^2)/dx: the residual must stay differentiable in x
        lambda: Resampler(PACMANN(n_moves=2), period=PERIOD),
        lambda: R3Refinement(sample_every=PERIOD),
    ],
    ids=["glf", "pacmann", "R3"],
)
def test_points_change_stay_inside_and_keep_their_number(make, tmp_path):
    problem, _, spy = fit(make(), tmp_path)
    x = interior(problem)
    assert x.shape == (N, 2)
    assert bool(((x >= 0) & (x <= 1)).all())
    kept = set(map(tuple, x.tolist())) & set(map(tuple, spy.batches[0].tolist()))
    # GLF's points are all new Gaussian moves; R3 keeps its above-mean-residual ones.
    assert len(kept) < N // 2 if isinstance(make(), R3Refinement) else not kept


def test_training_sees_the_new_points(tmp_path):
    problem, _, spy = fit(Resampler("glf", period=PERIOD), tmp_path, epochs=PERIOD + 1)
    # The step after the resample trains on the resampled set, not on a cached batch.
    assert torch.equal(spy.batches[PERIOD - 1], spy.batches[0])
    assert not torch.equal(spy.batches[PERIOD], spy.batches[0])
    # PINA shuffles the split once: the batch is the condition's points in another order.
    assert sorted(spy.batches[PERIOD].tolist()) == sorted(interior(problem).tolist())


def test_glf_scores_only_the_current_points_and_keeps_the_optimizer(tmp_path):
    cb = Resampler(GLF(), period=PERIOD)
    problem, trainer, _ = fit(cb, tmp_path)
    assert cb.costs.resamples == EPOCHS // PERIOD
    assert cb.residual_evals == cb.costs.resamples * N  # the current points, no candidate
    (opt,) = trainer.optimizers
    # One Adam step per epoch, never restarted by a resample.
    assert int(next(iter(opt.state.values()))["step"]) == EPOCHS
    # Only the interior condition moves; the boundary points are PINA's own.
    assert list(cb.domains) == ["D"]


def test_boundary_points_are_untouched(tmp_path):
    torch.manual_seed(0)
    problem, _, _ = fit(Resampler("r3", period=PERIOD), tmp_path, epochs=PERIOD)
    b = problem.conditions["boundary"].data.input.as_subclass(torch.Tensor)
    assert b.shape == (N_BOUNDARY, 2)
    on_edge = (b == 0) | (b == 1)
    assert bool(on_edge.any(dim=1).all())


def test_a_seed_reproduces_the_points(tmp_path):
    def points(seed):
        return interior(fit(Resampler("glf", period=PERIOD, seed=seed), tmp_path)[0])

    first, again, other = points(4), points(4), points(5)
    # The sampler's draws repeat exactly; two Lightning runs of the same seed differ only by
    # float32 rounding in training (about 1e-7 in these points), so compare to 1e-5.
    torch.testing.assert_close(first, again, rtol=0, atol=1e-5)
    assert float((first - other).abs().max()) > 0.1


def test_bad_input_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="grows the point set"):
        Resampler(RARD())
    with pytest.raises(ValueError, match="period"):
        Resampler(period=0)
    with pytest.raises(ValueError, match="'boundary' lives on"):
        fit(Resampler(conditions="boundary"), tmp_path, epochs=1)
    assert repr(Resampler(period=3)).startswith("Resampler(sampler=GLF(")


def test_coverage_is_logged_and_a_collapse_warns_once(tmp_path):
    """Plumbing: every resample's coverage is in history, and a threshold above any coverage
    warns once (the collapse itself is tested in tests/training)."""
    from glfpinn.samplers.coverage import CollapseWarning

    cb = Resampler("glf", period=PERIOD, coverage_threshold=0.999)
    with pytest.warns(CollapseWarning, match="'glf' collapsed") as caught:
        fit(cb, tmp_path, epochs=3 * PERIOD)
    assert len([w for w in caught if issubclass(w.category, CollapseWarning)]) == 1
    assert len(cb.history) == 3
    assert all(0 < h["coverage"] < 1.2 and h["condition"] for h in cb.history)
