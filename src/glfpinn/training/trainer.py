"""The training loop: the parts handed to one entry point.

``Trainer(problem, sampler, ...)`` assembles orthogonal parts, each replaceable on its own (the
way diffrax's ``diffeqsolve`` takes a solver, a step-size controller and ``SaveAt``):

- the sampler (what to train on) and the schedule (when to resample);
- the optimization plan (stages of optimizer + scheduler + steps, :mod:`.plan`);
- the loss (:mod:`.loss`, eager or compiled);
- the scorer (counted residuals at new points, :mod:`.scorer`);
- the evaluator (reference error, residual validation, user metrics, :mod:`.evaluator`);
- callbacks (:mod:`.callbacks`).

Everything that evolves lives in one :class:`~glfpinn.training.state.TrainState`. The trainer
owns the collocation points: at a resample it hands the sampler the residuals its last step
computed anyway (free), swaps in the new points and keeps every optimizer's state.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, final

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn._allocator import retain_freed_memory
from glfpinn._checks import check_device, check_int, check_positive
from glfpinn.problems.base import Problem, check_problem
from glfpinn.samplers.base import Sampler, SamplingContext
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD, CollapseMonitor, coverage
from glfpinn.training.callbacks import Callback, ProgressBar
from glfpinn.training.compiling import compile_mode, uses_cuda_graphs
from glfpinn.training.costs import peak_memory_mb, reset_peak_memory
from glfpinn.training.evaluator import Evaluator
from glfpinn.training.interrupts import Interrupted, deferred_signals
from glfpinn.training.loss import LossFn, NonFiniteLossError, TrainingLoss
from glfpinn.training.network import MLPSpec, ModelSpec, build_network
from glfpinn.training.plan import (
    OptimizationPlan,
    Stage,
    set_fused,
    skips_on_device,
    take_step,
)
from glfpinn.training.result import TrainResult
from glfpinn.training.schedules import Every, Schedule
from glfpinn.training.scorer import DEFAULT_CHUNK, Scorer
from glfpinn.training.shortcuts import resolve_plan
from glfpinn.training.state import TrainState

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup
    from glfpinn.distributed.sharding import Sharding

__all__ = [
    "Trainer",
    "resolve_device",
    "duplicate_fraction",
    "DTYPES",
    "DEFAULT_EVAL_EVERY",
    "DEFAULT_N_CONDITION",
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Steps between evaluations.
DEFAULT_EVAL_EVERY = 100
#: Points for the soft initial and boundary conditions.
DEFAULT_N_CONDITION = 1000
#: On K CUDA ranks, steps between reads of the ranks' stop flag (each read waits for the
#: device; every rank reads at the same steps, so all still stop after the same one).
STOP_POLL_STEPS = 10


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else must be one of ``DEVICES``."""
    name = check_device(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for, but CUDA is not available here; use cpu")
    return dev


def _seeds(seed: int, rank: int = 0) -> tuple[int, int, int]:
    """Independent streams for the network's initialisation, for sampling and for the held-out
    validation points (a prefix of the same SeedSequence, so the first two never changed).

    On K ranks the initialisation and validation streams are shared (every rank builds the same
    network and measures it on the same points). So is sampling for a sampler that draws from
    the whole set (every rank makes the single-process draw, ``rank`` 0 here); a sampler that
    resamples per rank samples per rank: rank 0 keeps the single-process stream, and rank
    r > 0 samples from the SeedSequence's r-th spawned child
    (``SeedSequence(seed).spawn(r + 1)[r]``), which numpy makes independent of its parent's
    and its siblings' streams."""
    a, b, c = np.random.SeedSequence(seed).generate_state(3)
    if rank > 0:
        (b,) = np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(1)
    return int(a), int(b), int(c)


def duplicate_fraction(points: Tensor) -> float:
    """Fraction of rows that repeat an earlier row. Rows are compared through one float64
    projection on fixed irrational weights (a 1-D unique is ~10x cheaper than unique(dim=0));
    distinct rows colliding exactly would need a measure-zero coincidence."""
    if points.shape[0] == 0:
        return 0.0
    weights = torch.arange(1, points.shape[1] + 1, dtype=torch.float64, device=points.device)
    keys = points.to(torch.float64) @ torch.sqrt(weights + 1.0)
    return 1.0 - torch.unique(keys).shape[0] / points.shape[0]


@final
class Trainer:
    """Trains ``problem``'s network on points chosen by ``sampler``.

    Args:
        steps, lbfgs_steps, lr: the default plan, ``steps`` Adam steps (20,000) at ``lr``
            (1e-3) then ``lbfgs_steps`` L-BFGS iterations (0); or give ``plan`` instead (an
            :class:`OptimizationPlan` or a list of :class:`Stage`). One rule for both,
            :func:`glfpinn.training.shortcuts.resolve_plan`.
        model: any ``nn.Module`` mapping (n, dim) to (n, 1) or (n,), or a factory
            ``problem -> module`` (called with torch's RNG seeded from ``seed`` and restored
            afterwards, so its default initialisation is the run's). A hard-constrained problem
            wraps it in its output transform unless it is a ``Constrained`` already. Without
            it, the problem's MLP of widths ``hidden`` (default: the problem's) with
            ``activation`` (tanh) and optional ``fourier_features`` (scale ``fourier_scale``) is
            built, its initialisation drawn from the seed.
        n_points: interior collocation points (default: the problem's).
        schedule: when to resample (default: every ``resample_every`` of the problem).
        eval_every: steps between evaluations (and at the last step).
        evaluator: what an evaluation measures (default :class:`Evaluator()`).
        loss_weights: ``{"residual": w_r, "conditions": w_c}``.
        score_chunk: points per chunk when a sampler scores new points (bounds memory).
        compile: train the compiled step (default; ``torch.compile``'s mode chosen for the
            device, see :mod:`.compiling`), a ``torch.compile`` mode by name, or False to train
            eagerly. A compile failure falls back to eager with a warning.
        retain_memory: on the CPU, have the allocator keep freed memory for reuse instead of
            page-faulting it back every step (process-wide; see ``glfpinn._allocator``).
        group: the process group of a data-parallel run (:func:`glfpinn.distributed.
            init_from_env`; None or one rank: a single process). Each of the K ranks then trains
            on its own slice of about ``n_points / K`` collocation points, with the same
            network, condition points and observations; the gradients and the loss are averaged
            over the ranks at every step, so a step is the single-process step on the union of
            the points. A resample runs per rank or on the whole set, as the sampler says
            (:class:`glfpinn.distributed.sharding.Sharding`). The device is the group's.
        coverage_threshold: a resample whose points' coverage (:mod:`glfpinn.samplers.
            coverage`, logged as ``coverage``) falls below this gets one
            :class:`~glfpinn.samplers.coverage.CollapseWarning` per run, in (0, 1).
    """

    def __init__(
        self,
        problem: Problem,
        sampler: Sampler,
        *,
        steps: int | None = None,
        lbfgs_steps: int | None = None,
        lr: float | None = None,
        plan: OptimizationPlan | Sequence[Stage] | None = None,
        model: ModelSpec | None = None,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        n_points: int | None = None,
        schedule: Schedule | None = None,
        eval_every: int = DEFAULT_EVAL_EVERY,
        evaluator: Evaluator | None = None,
        loss_weights: Mapping[str, float] | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        compile: bool | str = True,
        retain_memory: bool = True,
        n_condition: int = DEFAULT_N_CONDITION,
        score_chunk: int = DEFAULT_CHUNK,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
        sampler_name: str | None = None,
        group: ProcessGroup | None = None,
        coverage_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.plan = resolve_plan(plan, steps, lbfgs_steps, lr)
        #: None in a single process (one rank is one, with exactly its code path)
        self.group = group if group is not None and group.world_size > 1 else None
        check_positive("eval_every", eval_every)
        check_positive("n_condition", n_condition)
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise ValueError(f"dtype={dtype!r} is unknown; allowed: {', '.join(DTYPES)}")
            dtype = DTYPES[dtype]
        if n_points is None:
            n_points = problem.run_default("n_points")
        n_points = check_int("n_points", n_points, minimum=1)
        self.problem = check_problem(problem)  # a broken contract fails here, not at the end
        self.sampler = sampler
        self.sampler_name = sampler_name or type(sampler).__name__.lower()
        #: warns once when a resample's coverage drops below the threshold (a collapsed set)
        self.collapse = CollapseMonitor(coverage_threshold)
        self.device = resolve_device(device)
        #: how the points and the resamples are shared between the ranks (None: one process)
        self.sharding: Sharding | None = None
        if self.group is not None:
            from glfpinn.distributed.sharding import Sharding

            self.sharding = Sharding(self.group, sampler.resamples_per_rank())
            self.sharding.check(n_points)
            if self.device.type != self.group.device.type:
                raise ValueError(
                    f"device={str(device)!r} but the process group runs on "
                    f"{self.group.device.type}; give the device the group was started with"
                )
            self.device = self.group.device  # this rank's card: cuda:LOCAL_RANK
        reset_peak_memory(self.device)
        self.dtype = dtype
        self.schedule = schedule or Every(problem.run_default("resample_every"))
        self.eval_every = int(eval_every)
        self.evaluator = evaluator or Evaluator()
        self.seed = int(seed)
        self.compile = compile
        self.compile_mode = compile_mode(compile, self.device)
        self.callbacks: list[Callback] = list(callbacks)
        if progress and (self.group is None or self.group.is_main):
            self.callbacks.append(ProgressBar())
        #: A callback sets this to end training after the current step (early stopping).
        self.should_stop = False
        #: the signals caught during ``fit`` (SIGINT, SIGTERM), which stop it after a step
        self._signals: list[int] = []
        #: on K ranks: whether any rank has caught one, as the last step's all-reduce said (a
        #: 0-d tensor on the device)
        self._ranks_stop: Tensor | None = None
        #: the number of training points over every rank
        self._n_total = n_points

        per_rank = self.sharding is not None and self.sharding.per_rank
        init_seed, sample_seed, validation_seed = _seeds(
            self.seed, self.group.rank if per_rank and self.group is not None else 0
        )
        #: the model argument as given (a module or a factory), or the built-in MLP's spec
        self.model_spec = (
            model
            if model is not None
            else MLPSpec(hidden, activation, fourier_features, fourier_scale)
        )
        self.n_condition = int(n_condition)
        model = build_network(
            problem,
            model,
            init_seed,
            hidden=hidden,
            activation=activation,
            fourier_features=fourier_features,
            fourier_scale=fourier_scale,
        )
        model = model.to(self.device, self.dtype)
        # an inverse problem's coefficients train with the network (in place: the problem's
        # residual keeps reading the same tensors)
        unknowns = problem.unknown_parameters().to(self.device, self.dtype)
        self.training_loss = TrainingLoss(problem, model, loss_weights, self.compile_mode)
        self._cuda_graphs = uses_cuda_graphs(self.compile_mode, self.device)
        if retain_memory and self.device.type == "cpu":
            retain_freed_memory()
        generator = torch.Generator(self.device).manual_seed(sample_seed)
        if per_rank:
            share = n_points // self.group.world_size
            points = sampler.initial_points(share, problem.domain, generator, dtype)
            if points.shape[0] != share:
                raise ValueError(
                    f"sampler {self.sampler_name!r} resamples per rank but drew "
                    f"{points.shape[0]} initial points for a share of {share}"
                )
            sampler_state = sampler.init_state(points)
        else:  # every rank draws the whole set from the shared stream and keeps its slice
            points = sampler.initial_points(n_points, problem.domain, generator, dtype)
            sampler_state = sampler.init_state(points)
            self._n_total = int(points.shape[0])  # a sampler may round N (to a grid, ...)
            if self.sharding is not None:
                self.sharding.check(self._n_total)
                points = points[self.sharding.rows(self._n_total)]
        condition_points = problem.condition_points(n_condition, generator, dtype)
        if self.group is not None:
            # the condition terms are replicated, not split: every rank holds rank 0's points
            # (each rank draws its own first, so every rank's stream advances alike), so their
            # gradient, averaged over identical copies, is the single-process one
            condition_points = self.group.broadcast(condition_points)
        # fused (one kernel for all parameters, and a divergent step skipped on the device)
        # goes with compiling, the performance mode; eager keeps the foreach implementation
        self._params = [*model.parameters(), *unknowns.values()]
        optimizers, schedulers = self.plan.build(self._params, fused=self.compile_mode is not None)
        self.state = TrainState(
            model=model,
            optimizers=optimizers,
            schedulers=schedulers,
            points=points,
            sampler_state=sampler_state,
            condition_points=condition_points,
            generator=generator,
            unknowns=unknowns,
        )
        self.scorer = Scorer(lambda x: problem.residual(model, x), score_chunk, self.state.costs)
        self.validation = self.evaluator.prepare(
            problem,
            model,
            torch.Generator(self.device).manual_seed(validation_seed),
            dtype,
            self.device,
        )

    @property
    def model(self) -> nn.Module:
        return self.state.model

    @property
    def total_steps(self) -> int:
        return self.plan.total_steps

    # ------------------------------------------------------------------------- the loop
    def loss(self) -> tuple[Tensor, Tensor]:
        """Training loss at the current points and the residuals it computed (on K ranks, this
        rank's share: :meth:`optimizer_step` averages it over the ranks)."""
        s = self.state
        return self.training_loss.run(
            lambda fn: fn(s.points, self._point_weights(), s.condition_points)
        )

    def _point_weights(self) -> Tensor | None:
        """The loss weights of this rank's points: the sampler's, times K n_r / N when the
        ranks' shares differ in size (a growing set), so that the ranks' average of their
        weighted means is the weighted mean over the union."""
        s = self.state
        if self.sharding is None:
            return s.weights
        scale = self.sharding.loss_scale(self._n_total)
        if scale == 1.0:
            return s.weights
        ones = torch.ones(s.points.shape[0], dtype=s.points.dtype, device=s.points.device)
        return (ones if s.weights is None else s.weights) * scale

    def resample(self) -> dict[str, Any]:
        """Ask the sampler for the next points (the schedule decides when)."""
        s = self.state
        self.check_finite()  # a sampler must not see a diverged step's residuals
        t0 = time.perf_counter()
        evals0, scoring0 = s.costs.residual_evals, s.costs.scoring_time_s
        sharding = self.sharding
        whole_set = sharding is not None and not sharding.per_rank
        if whole_set:  # every rank makes the single-process draw, scoring split over them
            points = sharding.gather(s.points, self._n_total)
            residuals = s.last_residuals
            if residuals is not None:
                residuals = sharding.gather(residuals, self._n_total)
            residual_fn = sharding.split_scoring(self.scorer)
            residual_grad_fn = sharding.split_scoring_with_grad(self.scorer.with_grad)
        else:
            points, residuals = s.points, s.last_residuals
            residual_fn, residual_grad_fn = self.scorer, self.scorer.with_grad
        ctx = SamplingContext(
            points=points,
            residuals=residuals,
            residual_fn=residual_fn,
            domain=self.problem.domain,
            step=s.step,
            generator=s.generator,
            residual_grad_fn=residual_grad_fn,
            group=None if whole_set else self.group,
        )
        out = self.sampler.resample(ctx, s.sampler_state)
        pts = out.points.detach()
        if pts.ndim != 2 or pts.shape[1] != self.problem.dim or not bool(torch.isfinite(pts).all()):
            raise RuntimeError(
                f"sampler {self.sampler!r} returned invalid points of shape {tuple(pts.shape)}"
            )
        weights = out.weights
        n_total = int(pts.shape[0])
        duplicates = duplicate_fraction(pts)
        spread = coverage(pts, self.problem.domain)
        self.collapse.check(spread, self.sampler, self.sampler_name, s.step)
        if whole_set:
            sharding.check(n_total)
            pts = pts[sharding.rows(n_total)]
            weights = None if weights is None else weights[sharding.rows(n_total)]
        elif sharding is not None:
            if n_total != s.points.shape[0]:
                raise RuntimeError(
                    f"sampler {self.sampler!r} resamples per rank but changed this rank's "
                    f"share from {s.points.shape[0]} to {n_total} points"
                )
            n_total *= sharding.group.world_size
        s.points = pts.to(self.device, self.dtype)
        s.weights = None if weights is None else weights.detach().to(s.points)
        s.sampler_state = out.state
        s.last_residuals = None
        self._n_total = n_total
        elapsed = time.perf_counter() - t0
        s.costs.sampling_time_s += elapsed
        s.costs.resamples += 1
        info = {
            "step": s.step,
            "n_points": n_total,
            "duplicate_fraction": duplicates,
            "coverage": spread,
            "residual_evals": s.costs.residual_evals - evals0,
            "scoring_time_s": s.costs.scoring_time_s - scoring0,
            "time_s": elapsed,
            **out.info,
        }
        for cb in self.callbacks:
            cb.on_resample(self, info)
        return info

    def optimizer_step(self) -> Tensor:
        """One step of the plan's current stage at the current points; returns the loss, a 0-d
        tensor left on the device.

        A non-finite loss stops training with :class:`NonFiniteLossError`. An optimizer that
        can skip an update on the device (fused Adam, AdamW and SGD, the compiled default) is
        told to, and the error is raised at the next check (:meth:`check_finite`), so no step
        waits for the device; the parameters stay those before the first bad step. Any other
        optimizer is checked at once.
        """
        s = self.state
        index = self.plan.stage_at(s.step)
        optimizer = s.optimizers[index]
        deferred = skips_on_device(optimizer)
        residuals: list[Tensor] = []

        def forward_backward(loss_fn: LossFn) -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            if self._cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            loss, r = loss_fn(s.points, self._point_weights(), s.condition_points)
            if self.group is None:
                if not deferred and not torch.isfinite(loss):
                    raise NonFiniteLossError(self._diverged(s.step, loss.item()))
                loss.backward()
            else:
                # An explicit all-reduce of the gradients rather than DistributedDataParallel:
                # the residual differentiates the network with respect to its inputs (nested
                # autograd, torch.func engines calling the module functionally) and L-BFGS calls
                # this closure several times per step, neither of which DDP's per-forward hooks
                # follow, and the compiled loss captures the bare module. Every rank's loss is
                # the mean over its N/K points (plus the replicated condition and data terms),
                # so the ranks' mean is the loss and gradient on the union; the divergence
                # check reads that global loss, so every rank raises together. A caught
                # signal rides along, so every rank stops after the same step.
                loss.backward()
                loss, self._ranks_stop = self.group.average(
                    self._gradients(), loss, bool(self._signals)
                )
                if not deferred and not torch.isfinite(loss):
                    raise NonFiniteLossError(self._diverged(s.step, loss.item()))
            # a CUDA graph's next replay overwrites its outputs; these two outlive it
            residuals.append(r.detach().clone() if self._cuda_graphs else r.detach())
            return loss.detach().clone() if self._cuda_graphs else loss

        def closure() -> Tensor:
            return self.training_loss.run(forward_backward)

        def count_restart() -> None:
            s.costs.lbfgs_restarts += 1

        loss = take_step(optimizer, s.schedulers[index], closure, count_restart, s.step)
        s.costs.train_residual_evals += sum(int(r.shape[0]) for r in residuals)
        s.last_residuals = residuals[-1].abs()
        s.record_loss(loss)
        return s.loss

    def training_set(self) -> tuple[Tensor, Tensor | None]:
        """The training points and the residuals of the last step (None after a resample), of
        every rank joined in rank order (on K ranks a collective: every rank must call it)."""
        s = self.state
        if self.sharding is None:
            return s.points, s.last_residuals
        points = self.sharding.gather(s.points, self._n_total)
        # every rank has residuals or none alike: all step, resample and load together
        if s.last_residuals is None:
            return points, None
        return points, self.sharding.gather(s.last_residuals, self._n_total)

    def _gradients(self) -> list[Tensor]:
        # the same parameters have a gradient on every rank (same network, same loss terms)
        return [p.grad for p in self._params if p.grad is not None]

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if a step's loss has been NaN or Inf (this reads
        the device: the loop calls it before evaluating, resampling and stopping)."""
        bad = self.state.first_nonfinite_step()
        if bad is not None:
            raise NonFiniteLossError(self._diverged(bad, "NaN or Inf"))

    @staticmethod
    def _diverged(step: int, value: object) -> str:
        return (
            f"the loss became {value} at step {step}; "
            "lower the learning rate or check the problem's parameters"
        )

    def evaluate(self) -> dict[str, Any]:
        """The evaluator's measures now: l2_relative_error (None without a reference),
        residual_mean, residual_max, the user metrics and an inverse problem's unknowns."""
        out = self.validation()
        if self.state.unknowns:
            out["unknowns"] = self.state.unknown_values()
        return out

    def evaluates_after(self, step: int) -> bool:
        """Whether an evaluation follows optimizer step number ``step`` (1-based)."""
        return step % self.eval_every == 0 or step == self.total_steps

    def fit(self, until: int | None = None) -> TrainResult:
        """Train to the end of the plan, or only up to step ``until`` (a later call goes on
        from there: ``fit(until=k)`` then ``fit()`` is the same run as one ``fit()``).

        Callbacks' ``on_train_end`` (which writes result.json in a run directory) fires only when
        the plan is done or a callback stopped training. SIGINT or SIGTERM stops training at the
        end of the current step and raises :class:`Interrupted`; every exception that leaves
        ``fit`` goes to the callbacks' ``on_exception`` first (a run directory then writes a
        checkpoint of that whole step).
        """
        s = self.state
        end = (
            self.total_steps if until is None else min(check_int("until", until), self.total_steps)
        )
        s.start_clock()
        try:
            if not s.initial_metrics:
                s.initial_metrics = self.evaluate()
                s.metrics = dict(s.initial_metrics)
            for cb in self.callbacks:
                cb.on_train_start(self)
            self._ranks_stop = None
            with deferred_signals() as caught:
                self._signals = caught
                while s.step < end and not self.should_stop and not self._stopping():
                    self._step()
            self.check_finite()
            interrupted = bool(caught)
            if self.group is not None:  # a signal during the last step: every rank learns it
                interrupted = self.group.any(interrupted)
            if interrupted:
                raise Interrupted(caught[0] if caught else signal.SIGTERM)
        except BaseException as err:
            for cb in self.callbacks:
                cb.on_exception(self, err)
            raise
        finally:
            s.stop_clock()
            self._signals = []
        result = self.result()
        if s.step >= self.total_steps or self.should_stop:
            for cb in self.callbacks:
                cb.on_train_end(self, result)
        return result

    def _stopping(self) -> bool:
        """Whether a signal stops training now: one caught here, or on K ranks one that any
        rank caught, as the last step's all-reduce told every rank alike (read every step on
        the CPU, where the all-reduce has waited anyway, every ``STOP_POLL_STEPS`` on CUDA)."""
        if self.group is None:
            return bool(self._signals)
        if self._ranks_stop is None:
            return False
        return (self.device.type == "cpu" or self.state.step % STOP_POLL_STEPS == 0) and bool(
            self._ranks_stop
        )

    def _step(self) -> None:
        s = self.state
        if self.schedule.due(s.step):
            self.resample()
        loss = self.optimizer_step()
        s.step += 1
        for cb in self.callbacks:
            cb.on_train_batch_end(self, s.step - 1, loss)
        if self.evaluates_after(s.step):
            self.check_finite()
            s.metrics = self.evaluate()
            metrics = {"step": s.step, "loss": s.last_loss, **s.metrics, "elapsed_s": s.elapsed()}
            for cb in self.callbacks:
                cb.on_validation_end(self, metrics)

    def result(self) -> TrainResult:
        """What the run reports. On K ranks (every rank calls this: it sums over them) the
        point and residual counts are the whole run's; the times, the memory and the
        sampler's figures are rank 0's, and the metrics are every rank's alike."""
        import glfpinn

        s, m = self.state, self.state.metrics
        n_points, evals, train_evals = self._counts()
        return TrainResult(
            problem=self.problem.name,
            sampler=self.sampler_name,
            sampler_repr=repr(self.sampler),
            seed=self.seed,
            steps=s.step,
            stages=self.plan.describe(),
            n_points=n_points,
            l2_relative_error=m.get("l2_relative_error"),
            initial_l2_relative_error=s.initial_metrics.get("l2_relative_error"),
            residual_mean=m.get("residual_mean", float("nan")),
            residual_max=m.get("residual_max", float("nan")),
            metrics={k: m[k] for k in self.evaluator.metrics if k in m},
            unknowns=s.unknown_values(),
            final_loss=s.last_loss,
            wall_time_s=s.elapsed(),
            sampling_time_s=s.costs.sampling_time_s,
            scoring_time_s=s.costs.scoring_time_s,
            residual_evals=evals,
            train_residual_evals=train_evals,
            resamples=s.costs.resamples,
            lbfgs_restarts=s.costs.lbfgs_restarts,
            peak_memory_mb=peak_memory_mb(self.device),
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            glfpinn_version=glfpinn.__version__,
            torch_version=torch.__version__,
            world_size=1 if self.group is None else self.group.world_size,
        )

    def _counts(self) -> tuple[int, int, int]:
        """The training points, residual evaluations and training residual evaluations, summed
        over the ranks."""
        s = self.state
        counts = (int(s.points.shape[0]), s.costs.residual_evals, s.costs.train_residual_evals)
        if self.group is None:
            return counts
        total = self.group.sum(torch.tensor(counts, dtype=torch.int64, device=self.device))
        a, b, c = (int(v) for v in total.tolist())
        return a, b, c

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything that evolves during training (the state's, plus callbacks'). On K ranks
        every rank must call it, and every rank gets the whole run's: every rank's points,
        sampler state and generator (:mod:`glfpinn.distributed.checkpoint`)."""
        state = {
            **self.state.state_dict(),
            "callbacks": [cb.state_dict() for cb in self._stateful_callbacks()],
        }
        if self.sharding is None:
            return state
        from glfpinn.distributed.checkpoint import join

        return join(state, self.sharding.group, self.sharding.per_rank)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict`. A run on K ranks takes each rank's part of it
        back; a run on another number of ranks (one process included) is redistributed when
        its sampler draws from the whole set and refused when it resamples per rank (see
        :mod:`glfpinn.distributed.checkpoint`)."""
        n_total = int(state["points"].shape[0])  # the joined state holds every rank's
        if self.group is not None or int(state.get("world_size", 1)) > 1:
            from glfpinn.distributed.checkpoint import split

            per_rank = self.sharding is not None and self.sharding.per_rank
            state = split(state, self.group, per_rank)
        self.state.load_state_dict(state)
        self._n_total = n_total
        for stage, optimizer in zip(self.plan.stages, self.state.optimizers, strict=True):
            set_fused(optimizer, stage, self.compile_mode is not None)
        for cb, cb_state in zip(self._stateful_callbacks(), state.get("callbacks", [])):
            cb.load_state_dict(cb_state)

    def _stateful_callbacks(self) -> list[Callback]:
        # the progress bar is rank 0's alone and keeps no state: leaving it out lines up the
        # callbacks of every rank
        return [cb for cb in self.callbacks if not isinstance(cb, ProgressBar)]
