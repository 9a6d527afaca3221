import math
import os
import warnings
from pathlib import Path

import pytest
import torch

from glfpinn import (
    GLF,
    RAD,
    Callback,
    Every,
    NonFiniteLossError,
    Resampled,
    Sampler,
    UniformResample,
    problems,
    samplers,
)
from glfpinn.training import make_trainer
from tests.helpers import FaultyPoisson1D, Poisson1D


def _trainer(sampler=None, **kw):
    kw.setdefault("steps", 60)
    kw.setdefault("eval_every", 20)
    return make_trainer(Poisson1D(), sampler or GLF(alpha=1e-3), **kw)


def test_training_lowers_the_l2_error():
    result = _trainer(steps=300, lr=1e-2).fit()
    assert result.l2_relative_error < 0.2 * result.initial_l2_relative_error


def test_lbfgs_stage_follows_adam_and_keeps_lowering_the_error():
    adam_only = _trainer(steps=100, lr=1e-2).fit()
    with_lbfgs = _trainer(steps=100, lr=1e-2, lbfgs_steps=50).fit()
    assert with_lbfgs.steps == 150
    assert with_lbfgs.l2_relative_error < adam_only.l2_relative_error


class _Recorder(Callback):
    def __init__(self):
        self.resamples, self.evals = [], []

    def on_resample(self, trainer, info):
        self.resamples.append(info)

    def on_validation_end(self, trainer, metrics):
        self.evals.append(metrics)


def test_resampling_follows_the_schedule_and_keeps_optimizer_state():
    rec = _Recorder()
    tr = _trainer(schedule=Every(25), callbacks=[rec], steps=100)
    tr.fit()
    assert [r["step"] for r in rec.resamples] == [25, 50, 75]
    assert [m["step"] for m in rec.evals] == [20, 40, 60, 80, 100]
    # Adam's step counter survives the three point swaps: never reset.
    state = next(iter(tr.state.optimizers[0].state.values()))
    assert int(state["step"]) == 100


def test_sampler_receives_the_last_steps_residuals_for_free():
    seen = {}

    class Spy(Sampler):
        def resample(self, ctx, state):
            seen["residuals"] = ctx.residuals.clone()
            return Resampled(ctx.points, state)

    tr = _trainer(Spy(), schedule=Every(10), steps=11)
    tr.fit()
    assert tr.state.costs.residual_evals == 0
    assert seen["residuals"].shape == (64,)
    assert bool((seen["residuals"] >= 0).all())


def test_rad_costs_are_counted():
    tr = _trainer(RAD(n_candidates=500), schedule=Every(20), steps=60)
    result = tr.fit()
    assert result.residual_evals == 2 * 500
    assert result.resamples == 2 and result.scoring_time_s > 0
    assert result.sampling_time_s >= result.scoring_time_s


def test_same_seed_same_run_different_seed_different_run():
    a = _trainer(UniformResample(), seed=3).fit()
    b = _trainer(UniformResample(), seed=3).fit()
    c = _trainer(UniformResample(), seed=4).fit()
    assert a.l2_relative_error == b.l2_relative_error
    assert a.l2_relative_error != c.l2_relative_error


def test_training_does_not_touch_global_rng_state():
    before = torch.random.get_rng_state()
    _trainer(GLF(alpha=1e-3), schedule=Every(20)).fit()
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize("compile", [True, False])
def test_a_nan_loss_stops_training_with_a_clear_error(compile):
    tr = _trainer(lr=1e30, steps=50, compile=compile)
    with pytest.raises(NonFiniteLossError, match="at step"):
        tr.fit()


def _nan_on_calls(bad_calls):
    """Poisson1D whose residual is NaN on the residual calls listed (counting from 1: the
    contract check, the initial validation, then one per training step)."""
    bad = set(bad_calls)
    return FaultyPoisson1D(lambda call, r: r * float("nan") if call in bad else r)


def _nan_from_step(at):
    """NaN from training step ``at`` on (0-based: its residual is call ``at + 3``)."""
    return _nan_on_calls(range(at + 3, 10_000))


def test_a_fused_step_skips_a_divergence_on_the_device_and_the_next_check_reports_it():
    """The compiled default (fused Adam) does not read the loss every step: a NaN step leaves
    parameters and moments untouched, and the check before the next evaluation names it."""
    tr = make_trainer(_nan_from_step(at=7), GLF(alpha=1e-3), steps=40, eval_every=10, compile=True)
    tr.fit(until=7)
    params = [p.detach().clone() for p in tr.model.parameters()]
    moments = [v.clone() for slots in tr.state.optimizers[0].state.values() for v in slots.values()]
    for _ in range(3):
        tr.optimizer_step()  # steps 7, 8, 9: no error yet, nothing updated
        tr.state.step += 1
    assert all(torch.equal(a, b) for a, b in zip(params, tr.model.parameters()))
    after = [v for slots in tr.state.optimizers[0].state.values() for v in slots.values()]
    assert all(torch.equal(a, b) for a, b in zip(moments, after))
    assert not tr.state.finite()  # a checkpoint now would be refused
    with pytest.raises(NonFiniteLossError, match="at step 7;"):
        tr.check_finite()


def test_an_eager_step_reports_a_divergence_at_once():
    tr = make_trainer(_nan_from_step(at=7), GLF(alpha=1e-3), steps=40, eval_every=10, compile=False)
    tr.fit(until=7)
    with pytest.raises(NonFiniteLossError, match="became nan at step 7;"):
        tr.optimizer_step()


def test_a_fused_adam_step_never_reads_a_tensor_on_the_host(monkeypatch):
    """No host synchronisation per step: between evaluations, the compiled default's Adam step
    converts no tensor to a Python number or truth value."""
    tr = _trainer(steps=40, eval_every=40, compile=True)
    tr.fit(until=1)
    reads = []
    for name in ("__bool__", "__float__", "__int__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original):
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for _ in range(5):
        tr.optimizer_step()
        tr.state.step += 1
    monkeypatch.undo()
    assert reads == []


def test_state_dict_round_trip_resumes_exactly():
    full = _trainer(schedule=Every(15), steps=60).fit()
    first = _trainer(schedule=Every(15), steps=60)
    first.fit(until=30)
    state = first.state_dict()
    second = _trainer(schedule=Every(15), steps=60)
    second.load_state_dict(state)
    resumed = second.fit()
    assert resumed.l2_relative_error == full.l2_relative_error
    assert resumed.final_loss == full.final_loss


def test_burgers_short_training_lowers_the_error():
    """A real benchmark: 150 Adam steps then 60 L-BFGS iterations on 500 points."""
    result = make_trainer(
        problems.get("burgers"),
        GLF(),
        steps=150,
        lbfgs_steps=60,
        n_points=500,
        eval_every=50,
        lr=3e-3,
        hidden=(32, 32, 32),
        schedule=Every(50),
    ).fit()
    assert result.l2_relative_error < 0.7 * result.initial_l2_relative_error


def test_allen_cahn_short_training_lowers_the_residual_loss():
    """Allen-Cahn's L2 error first rises (the network passes a metastable state before the
    interfaces form; see docs/results.md), so a short run is judged by its loss."""
    trainer = make_trainer(
        problems.get("allen-cahn"),
        GLF(),
        steps=150,
        lbfgs_steps=30,
        n_points=500,
        eval_every=50,
        lr=3e-3,
        hidden=(32, 32, 32),
        schedule=Every(50),
    )
    initial = float(trainer.loss()[0])
    result = trainer.fit()
    assert math.isfinite(result.l2_relative_error)
    assert result.final_loss < 0.5 * initial


def test_duplicate_fraction_counts_repeated_rows():
    from glfpinn.training.trainer import duplicate_fraction

    x = torch.rand(100, 5, generator=torch.Generator().manual_seed(0))
    assert duplicate_fraction(x) == 0.0
    assert duplicate_fraction(torch.cat([x, x[:25]])) == pytest.approx(25 / 125)
    swapped = x[:, [1, 0, 2, 3, 4]]  # same coordinates, other order: not a duplicate
    assert duplicate_fraction(torch.cat([x, swapped])) == 0.0


def test_compiled_training_step_matches_eager(real_compile):
    """Trainer(compile=True) runs the same maths: equal loss and parameters after two steps
    (float32, so to rounding; the compiled kernels fuse and reorder the element-wise work)."""
    runs = []
    for compile in (False, True):
        trainer = make_trainer(
            problems.get("allen-cahn"),
            GLF(),
            steps=10,
            n_points=256,
            hidden=(16, 16),
            seed=3,
            compile=compile,
        )
        losses = [float(trainer.optimizer_step()) for _ in range(2)]
        runs.append(
            (losses, torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()]))
        )
    (loss_e, p_e), (loss_c, p_c) = runs
    assert loss_c == pytest.approx(loss_e, rel=1e-4)
    assert torch.allclose(p_c, p_e, rtol=0, atol=1e-5)
    # the compiled kernels were kept in glfpinn's cache folder, for the next process
    cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    assert cache.is_relative_to(os.environ["GLFPINN_CACHE_DIR"]) and any(cache.rglob("*.py"))


def test_a_failing_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    trainer = _trainer(compile=True)

    def broken(*args):
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(trainer.training_loss, "compiled", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*backend exploded"):
        loss = trainer.optimizer_step()
    assert math.isfinite(loss) and trainer.training_loss.compiled is None


def test_a_non_finite_lbfgs_probe_restarts_the_step_without_history():
    """The first L-BFGS iteration after 5 Adam steps: call 1 is the problem's contract check,
    call 2 the initial validation, calls 3-7 are Adam's, call 8 the iteration's first
    evaluation, call 9 its first line-search probe, which is made NaN."""
    wrapped = _nan_on_calls([9])
    tr = make_trainer(wrapped, GLF(alpha=1e-3), steps=5, lbfgs_steps=3, eval_every=100)
    tr.fit(until=5)
    with pytest.warns(RuntimeWarning, match="L-BFGS line search met a non-finite loss at step 5"):
        loss = tr.optimizer_step()
    assert math.isfinite(loss) and tr.state.costs.lbfgs_restarts == 1
    assert all(bool(torch.isfinite(p).all()) for p in tr.model.parameters())
    lbfgs = tr.state.optimizers[1]
    state = lbfgs.state[lbfgs.param_groups[0]["params"][0]]
    assert state["n_iter"] == 1  # the history was cleared and one iteration made


def test_a_non_finite_probe_in_a_dense_quasi_newton_stage_restarts_it_from_the_identity():
    """As above, with an SSBroyden stage: call 8 is its first evaluation, call 9 its first
    probe (NaN); the step is redone from its start and from H = I."""
    from glfpinn import Stage

    wrapped = _nan_on_calls([9])
    plan = [Stage("adam", 5, lr=1e-3), Stage("ssbroyden", 3)]
    tr = make_trainer(wrapped, GLF(alpha=1e-3), plan=plan, eval_every=100)
    tr.fit(until=5)
    with pytest.warns(RuntimeWarning, match="SSBroyden line search met a non-finite loss"):
        loss = tr.optimizer_step()
    assert math.isfinite(loss) and tr.state.costs.lbfgs_restarts == 1
    assert all(bool(torch.isfinite(p).all()) for p in tr.model.parameters())
    opt = tr.state.optimizers[1]
    assert opt.state[opt._params[0]]["updates"] <= 1  # one iteration from the identity


def test_a_persistent_non_finite_loss_in_lbfgs_still_stops_training():
    # call 1: the contract check, 2: the initial validation, 3: the one Adam step; every later
    # call is NaN
    wrapped = _nan_on_calls(range(4, 100))
    tr = make_trainer(wrapped, GLF(alpha=1e-3), steps=1, lbfgs_steps=3, eval_every=100)
    tr.fit(until=1)  # straight into the L-BFGS stage
    with pytest.raises(NonFiniteLossError), pytest.warns(RuntimeWarning):
        tr.optimizer_step()


class _BackwardFails(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward compiler exploded")


def test_a_compile_failure_in_the_backward_also_falls_back(monkeypatch):
    trainer = _trainer(compile=True)

    def compiled_loss(points, weights, condition_points):
        loss, r = trainer.training_loss.eager(points, weights, condition_points)
        return _BackwardFails.apply(loss), r

    monkeypatch.setattr(trainer.training_loss, "compiled", compiled_loss)
    with pytest.warns(RuntimeWarning, match="backward compiler exploded"):
        loss = trainer.optimizer_step()
    assert math.isfinite(loss) and trainer.training_loss.compiled is None


def test_resume_uses_the_adam_implementation_of_its_own_mode():
    """A checkpoint's param_groups carry the Adam flavour it ran with; the resuming trainer's
    mode decides (fused with compile, foreach without)."""
    eager = _trainer(steps=5, compile=False)
    eager.optimizer_step()
    compiled = _trainer(steps=5, compile=True)
    compiled.load_state_dict(eager.state_dict())
    assert all(g["fused"] for g in compiled.state.optimizers[0].param_groups)
    eager.load_state_dict(compiled.state_dict())
    assert not any(g["fused"] for g in eager.state.optimizers[0].param_groups)


def _sequential_copy(mlp):
    """An nn.Sequential computing exactly what ``mlp`` (a glfpinn MLP) computes."""
    layers = []
    for i, linear in enumerate(mlp.layers):
        copy = torch.nn.Linear(linear.in_features, linear.out_features)
        copy.load_state_dict(linear.state_dict())
        layers += [copy] if i == len(mlp.layers) - 1 else [copy, torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def test_an_nn_sequential_trains_on_the_fast_path_like_the_mlp():
    """reaction-diffusion's residual takes the Taylor engine in eager mode; a Sequential of the
    same layers is recognised (no warning) and trains to the same numbers."""
    from glfpinn import ops

    problem = problems.get("reaction-diffusion-20d", space_dim=3)
    mlp = problem.build_model((16, 16), generator=torch.Generator().manual_seed(5))
    seq = _sequential_copy(mlp)
    assert ops.supports_taylor(seq)
    kw = dict(steps=30, n_points=128, n_condition=64, eval_every=15, schedule=Every(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the generic-path warning would fail the test
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's, on importing its compiler
        from_seq = make_trainer(problem, GLF(), model=seq, **kw).fit()
    from_mlp = make_trainer(problem, GLF(), model=mlp, **kw).fit()
    assert from_seq.final_loss == pytest.approx(from_mlp.final_loss, rel=1e-4)
    assert from_seq.l2_relative_error == pytest.approx(from_mlp.l2_relative_error, rel=1e-4)


def test_any_other_module_trains_on_the_generic_path_with_a_one_time_warning():
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Linear(1, 8)
            self.out = torch.nn.Linear(8, 1)

        def forward(self, x):  # softplus: an activation the fast engines have no formula for
            return self.out(torch.nn.functional.softplus(self.inner(x))) + x

    with pytest.warns(UserWarning, match="the model Residual is not one the fast derivative"):
        first = make_trainer(Poisson1D(), GLF(), model=Residual(), steps=20, lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per module type
        make_trainer(Poisson1D(), GLF(), model=Residual(), steps=20)
    result = first.fit()
    assert result.l2_relative_error < result.initial_l2_relative_error


def test_a_hard_constrained_problem_wraps_a_plain_model_in_its_transform():
    from glfpinn.nn import Constrained

    seq = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    tr = make_trainer(Poisson1D(), GLF(), model=seq, steps=5)
    assert isinstance(tr.model, Constrained) and tr.model.net is seq
    u = tr.model(torch.tensor([[0.0], [1.0]]))
    assert torch.equal(u.reshape(-1), torch.zeros(2))  # u = x (1 - x) NN(x) vanishes at the ends


def test_a_model_factory_is_built_from_the_runs_seed_without_touching_global_rng():
    def factory(problem):
        return torch.nn.Sequential(
            torch.nn.Linear(problem.dim, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
        )

    before = torch.random.get_rng_state()
    a, b, c = (make_trainer(Poisson1D(), GLF(), model=factory, steps=5, seed=s) for s in (0, 0, 1))
    assert torch.equal(before, torch.random.get_rng_state())
    wa, wb, wc = (t.model.net[0].weight for t in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    with pytest.raises(ValueError, match="returned int, not a Module"):
        make_trainer(Poisson1D(), GLF(), model=lambda problem: 3, steps=5)
    with pytest.raises(ValueError, match="hidden describe the built-in MLP"):
        make_trainer(Poisson1D(), GLF(), model=factory, hidden=(4,), steps=5)


def test_the_trainer_refuses_a_device_it_cannot_train_on():
    """The same rule as a config's: torch knows ``meta`` but nothing trains there."""
    with pytest.raises(ValueError, match="device='meta' is not allowed; allowed: cpu, cuda"):
        make_trainer(Poisson1D(), GLF(), steps=5, device="meta")


def test_a_trainer_takes_the_problem_and_sampler_by_registry_name():
    by_name = make_trainer("burgers", "glf-robust", steps=2, n_points=32, hidden=(8,), seed=3)
    by_part = make_trainer(
        problems.get("burgers"), samplers.get("glf-robust"), steps=2, n_points=32, hidden=(8,),
        seed=3, sampler_name="glf-robust",
    )  # fmt: skip
    assert by_name.problem.get_params() == by_part.problem.get_params()
    assert by_name.sampler.get_params() == by_part.sampler.get_params()
    assert by_name.fit().to_dict()["sampler"] == "glf-robust"
    with pytest.raises(ValueError, match="sampler 'gfl' is unknown .*allowed: .*glf-robust"):
        make_trainer("burgers", "gfl")
