"""The training loop: a small loop over the parts it is handed.

``Trainer(problem, sampler, plan=..., ...)`` takes orthogonal parts, each replaceable on its own
(the way diffrax's ``diffeqsolve`` takes a solver, a step-size controller and ``SaveAt``)::

    problem, sampler ──► Trainer ◄── plan (stages: optimizer + scheduler + steps)   plan.py
                           │  ▲      schedule (when to resample)                   schedules.py
                           │  │      evaluator (reference error, residuals, metrics) evaluator.py
                           │  │      model (a module, a factory, the built-in MLP)    network.py
                           │  │      callbacks (run directory, progress, yours)      callbacks.py
                           │  └───── strategy (one process, or K ranks)  glfpinn.strategy,
                           │                                             glfpinn.distributed
                           ▼
          one TrainState ── step.py (closure -> (loss, residuals); optimizer + L-BFGS retry)
                         ── resampling.py (the sampler's draw, swapped in place; its costs)
                         ── checkpointing.py (state_dict / load_state_dict, joined by strategy)
                         ── result.py (TrainResult.from_state)

Everything that evolves lives in one :class:`~glfpinn.training.state.TrainState`. The loop
never asks how many processes there are: the strategy answers every such question. The
shortcuts of the default plan and MLP (``steps``, ``lr``, ``hidden``, ...) and the process
group are the builder's (:func:`glfpinn.training.builder.make_trainer`, :func:`glfpinn.train`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, final

import torch
from torch import Tensor, nn

from glfpinn import samplers
from glfpinn._checks import check_int, check_positive
from glfpinn.problems.base import Problem, check_problem
from glfpinn.samplers.base import Sampler
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD, CollapseMonitor
from glfpinn.strategy import SingleProcess, Strategy
from glfpinn.training import checkpointing
from glfpinn.training.callbacks import Callback
from glfpinn.training.compiling import compile_mode, short_run_note, uses_cuda_graphs
from glfpinn.training.devices import DTYPES, resolve_device, resolve_dtype
from glfpinn.training.evaluator import Evaluator
from glfpinn.training.interrupts import stop_on_signals
from glfpinn.training.loss import NonFiniteLossError, TrainingLoss
from glfpinn.training.network import MLPSpec, ModelSpec
from glfpinn.training.plan import OptimizationPlan, Stage
from glfpinn.training.precision import promote
from glfpinn.training.resampling import duplicate_fraction, resample
from glfpinn.training.result import TrainResult
from glfpinn.training.schedules import Every, Schedule
from glfpinn.training.scorer import DEFAULT_CHUNK, Scorer
from glfpinn.training.state import TrainState
from glfpinn.training.step import TrainingStep, after_resample, diverged

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup

__all__ = [
    "Trainer",
    "resolve_device",
    "duplicate_fraction",
    "DTYPES",
    "DEFAULT_EVAL_EVERY",
    "DEFAULT_N_CONDITION",
]

#: Steps between evaluations.
DEFAULT_EVAL_EVERY = 100
#: Points for the soft initial and boundary conditions.
DEFAULT_N_CONDITION = 1000


@final
class Trainer:
    """Trains ``problem``'s network on points chosen by ``sampler``, following ``plan``.

    Args:
        plan: the optimizer stages (an :class:`OptimizationPlan` or a list of :class:`Stage`);
            ``OptimizationPlan.adam_then_lbfgs(steps, lbfgs_steps, lr)`` is the default one.
        model: any ``nn.Module`` mapping (n, dim) to (n, 1) or (n,), a factory
            ``problem -> module`` (called with torch's RNG seeded from the run and restored
            afterwards), or :class:`~glfpinn.training.network.MLPSpec` options; None: the
            problem's MLP. A hard-constrained problem wraps it in its output transform unless
            it is a ``Constrained`` already.
        n_points: interior collocation points over every process (default: the problem's).
        schedule: when to resample (default: at each round's start with a plan of rounds,
            else every ``resample_every`` of the problem).
        evaluator: what an evaluation measures (default :class:`Evaluator()`).
        loss_weights: the loss's terms, ``{"residual": w_r, "conditions": w_c, "data": w_d}``.
        equation_weights: a system of PDEs' equations' weights in the residual term,
            ``{equation: w}`` (1 for the others; :mod:`.loss`).
        score: how a system's residual columns reduce to the one score per point the samplers
            and the residual statistics see: ``"l2"`` (default), ``"max"`` or
            ``{"weights": {equation: w}}`` (:mod:`.scores`); a scalar problem scores ``|r|``.
        callbacks: hooks called by the loop (:mod:`.callbacks`).
        strategy: how the run is distributed: :class:`~glfpinn.strategy.SingleProcess` (the
            default) or :class:`glfpinn.distributed.DataParallel` (K ranks, each on its slice of
            the points, gradients averaged at every step; the device is the group's).
        seed, device, dtype: the run's random streams, device and float precision (a stage's
            own ``dtype`` switches it from that stage on: :mod:`.precision`).
        compile: ``"auto"`` (default): train the compiled step, except a run shorter than
            :data:`~.compiling.SHORT_RUN_STEPS` steps, which trains eagerly (an info line says
            so); True: compiled whatever the length (the mode chosen for the device, see
            :mod:`.compiling`); a ``torch.compile`` mode by name; or False to train eagerly.
        eval_every: steps between evaluations (and at the last step): when the loop evaluates.
        n_condition: points for the soft initial and boundary conditions, drawn by the loop.
        score_chunk: points per chunk when a sampler scores new points (bounds memory).
        sampler_name: the sampler's name in the run's result (default: its registry name, else
            its class's).
        coverage_threshold: a resample whose points' coverage (logged as ``coverage``,
            :mod:`glfpinn.samplers.coverage`) falls below this gets one
            :class:`~glfpinn.samplers.coverage.CollapseWarning` per run, in (0, 1).
    """

    def __init__(
        self,
        problem: Problem,
        sampler: Sampler,
        *,
        plan: OptimizationPlan | Sequence[Stage],
        model: ModelSpec | None = None,
        n_points: int | None = None,
        schedule: Schedule | None = None,
        evaluator: Evaluator | None = None,
        loss_weights: Mapping[str, float] | None = None,
        equation_weights: Mapping[str, float] | None = None,
        score: str | Mapping[str, Any] = "l2",
        callbacks: Sequence[Callback] = (),
        strategy: Strategy | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        compile: bool | str = "auto",
        eval_every: int = DEFAULT_EVAL_EVERY,
        n_condition: int = DEFAULT_N_CONDITION,
        score_chunk: int = DEFAULT_CHUNK,
        sampler_name: str | None = None,
        coverage_threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.plan = plan if isinstance(plan, OptimizationPlan) else OptimizationPlan(plan)
        self.strategy = SingleProcess() if strategy is None else strategy
        check_positive("eval_every", eval_every)
        check_positive("n_condition", n_condition)
        dtype = resolve_dtype(dtype)
        if n_points is None:
            n_points = problem.run_default("n_points")
        n_points = check_int("n_points", n_points, minimum=1)
        self.problem = check_problem(problem)  # a broken contract fails here, not at the end
        self.sampler = sampler
        self.sampler_name = (
            sampler_name
            or samplers.registry.name_of(type(sampler))
            or type(sampler).__name__.lower()
        )
        #: warns once when a resample's coverage drops below the threshold (a collapsed set)
        self.collapse = CollapseMonitor(coverage_threshold)
        self.device = self.strategy.setup(sampler, n_points, resolve_device(device))
        self.dtype = dtype
        #: the precision given, which the plan's stages may switch from
        self.base_dtype = dtype
        self.schedule = (
            schedule or self.plan.round_schedule() or Every(problem.run_default("resample_every"))
        )
        self.eval_every = int(eval_every)
        self.evaluator = evaluator or Evaluator()
        self.seed = int(seed)
        self.compile = compile
        self.compile_mode = compile_mode(compile, self.device, self.plan.total_steps)
        self.callbacks: list[Callback] = list(callbacks)
        #: A callback sets this to end training after the current step (early stopping).
        self.should_stop = False
        #: the signals caught during ``fit`` (SIGINT, SIGTERM), which stop it after a step
        self._signals: list[int] = []
        #: the model as given (a module or a factory), or the built-in MLP's spec: run records
        #: read it (glfpinn.config.config_of)
        self.model_spec = MLPSpec() if model is None else model
        self.n_condition = int(n_condition)

        init_seed, sample_seed, validation_seed = self.strategy.seeds(self.seed)
        fused = self.compile_mode is not None
        self.state, params = TrainState.initial(
            problem,
            sampler,
            model,
            self.plan,
            self.strategy,
            (init_seed, sample_seed),
            n_points=n_points,
            n_condition=n_condition,
            device=self.device,
            dtype=dtype,
            fused=fused,
            name=self.sampler_name,
        )
        model = self.state.model
        self.training_loss = TrainingLoss(
            problem, model, loss_weights, self.compile_mode, equation_weights, score
        )
        #: the score as given (a run record keeps it), and checked
        self.score = score
        checked = self.training_loss.score
        outputs = tuple(getattr(problem, "outputs", ("u",)))
        #: a system's per-output errors, reported with the result's metrics
        self.per_output_keys = (
            [f"l2_relative_error_{name}" for name in outputs] if len(outputs) > 1 else []
        )
        self.training_step = TrainingStep(
            self.plan,
            self.training_loss,
            self.strategy,
            params,
            uses_cuda_graphs(self.compile_mode, self.device),
            stop=lambda: bool(self._signals),
        )
        self.scorer = Scorer(
            lambda x: problem.residual(model, x), score_chunk, self.state.costs, score=checked
        )
        validation = torch.Generator(self.device).manual_seed(validation_seed)
        self.validation = self.evaluator.prepare(
            problem, model, validation, dtype, self.device, score=checked
        )
        note = short_run_note(compile, self.plan.total_steps)
        if note is not None:  # said once the run is built: a refused one says only its error
            logging.getLogger("glfpinn").info(note)

    @property
    def model(self) -> nn.Module:
        return self.state.model

    @property
    def group(self) -> ProcessGroup | None:
        """The strategy's process group (None in a single process)."""
        return self.strategy.group

    @property
    def total_steps(self) -> int:
        return self.plan.total_steps

    # ------------------------------------------------------------------------- the loop
    def loss(self) -> tuple[Tensor, Tensor]:
        """Training loss at the current points and the residuals it computed (on K ranks, this
        rank's share: :meth:`optimizer_step` averages it over the ranks)."""
        s = self.state
        weights = self.strategy.point_weights(s.weights, s.points)
        return self.training_loss.run(lambda fn: fn(s.points, weights, s.condition_points))

    def resample(self) -> dict[str, Any]:
        """Ask the sampler for the next points (the schedule decides when); see
        :func:`glfpinn.training.resampling.resample` for the record returned."""
        self.check_finite()  # a sampler must not see a diverged step's residuals
        info = resample(self.state, self.sampler, self.strategy, self.scorer, self.problem.domain)
        after_resample(self.plan, self.state.optimizers)
        self.collapse.check(info["coverage"], self.sampler, self.sampler_name, info["step"])
        self._emit("on_resample", info)
        return info

    def optimizer_step(self) -> Tensor:
        """One step of the plan's current stage at the current points (:mod:`.step`); returns
        the loss, a 0-d tensor left on the device.

        A non-finite loss stops training with :class:`NonFiniteLossError`. An optimizer that
        can skip an update on the device (fused Adam, AdamW and SGD, the compiled default) is
        told to, and the error is raised at the next check (:meth:`check_finite`), so no step
        waits for the device; the parameters stay those before the first bad step. Any other
        optimizer is checked at once.
        """
        return self.training_step(self.state)

    def training_set(self) -> tuple[Tensor, Tensor | None]:
        """The training points and the residuals of the last step (None after a resample), of
        every rank joined in rank order (on K ranks a collective: every rank must call it)."""
        return self.strategy.gather(self.state.points, self.state.last_residuals)

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if a step's loss has been NaN or Inf (this reads
        the device: the loop calls it before evaluating, resampling and stopping)."""
        bad = self.state.first_nonfinite_step()
        if bad is not None:
            raise NonFiniteLossError(diverged(bad, "NaN or Inf"))

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
        end of the current step and raises :class:`Interrupted` (on K ranks, every rank after
        the same step); every exception that leaves ``fit`` goes to the callbacks'
        ``on_exception`` first (a run directory then writes a checkpoint of that whole step).
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
            self._emit("on_train_start")
            self.strategy.begin()
            with stop_on_signals(self.strategy.any) as self._signals:
                while (
                    s.step < end
                    and not self.should_stop
                    and not self.strategy.stopping(bool(self._signals), s.step)
                ):
                    self._step()
                self.check_finite()
        except BaseException as err:
            self._emit("on_exception", err)
            raise
        finally:
            s.stop_clock()
            self._signals = []
        result = self.result()
        if s.step >= self.total_steps or self.should_stop:
            self._emit("on_train_end", result)
        return result

    def _emit(self, hook: str, *args: Any) -> None:
        """Call every callback's ``hook`` with the trainer and ``args``, in order."""
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _set_precision(self, step: int) -> None:
        """Cast the run to the precision of optimizer step ``step`` if it differs
        (:mod:`.precision`)."""
        wanted = DTYPES[self.plan.dtype_at(step, str(self.base_dtype).removeprefix("torch."))]
        if wanted != self.dtype:
            self.validation = promote(self.state, self.training_loss, self.validation, wanted)
            self.dtype = wanted

    def _step(self) -> None:
        s = self.state
        self._set_precision(s.step)
        if self.schedule.due(s.step):
            self.resample()
        loss = self.optimizer_step()
        s.step += 1
        self._emit("on_train_batch_end", s.step - 1, loss)
        if self.evaluates_after(s.step):
            self.check_finite()
            s.metrics = self.evaluate()
            metrics = {"step": s.step, "loss": s.last_loss, **s.metrics, "elapsed_s": s.elapsed()}
            self._emit("on_validation_end", metrics)

    def result(self) -> TrainResult:
        """What the run reports. On K ranks (every rank calls this: it sums over them) the
        point and residual counts are the whole run's; the times, the memory and the
        sampler's figures are rank 0's, and the metrics are every rank's alike."""
        s = self.state
        counts = (int(s.points.shape[0]), s.costs.residual_evals, s.costs.train_residual_evals)
        return TrainResult.from_state(
            s,
            problem=self.problem.name,
            sampler=self.sampler_name,
            sampler_repr=repr(self.sampler),
            seed=self.seed,
            plan=self.plan,
            metric_names=[*self.evaluator.metrics, *self.per_output_keys],
            counts=self.strategy.sum_counts(counts, self.device),
            device=self.device,
            dtype=self.dtype,
            world_size=self.strategy.world_size,
        )

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything that evolves during training (the state's, plus callbacks', plus whether
        the collapse warning was given, so a resumed run does not give it twice); on K ranks a
        collective, every rank getting the whole run's (:mod:`.checkpointing`)."""
        state = checkpointing.state_dict(self.state, self.callbacks, self.strategy)
        return {**state, "collapse_warned": self.collapse.warned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a state from :meth:`state_dict`, of this number of processes or another
        (:mod:`.checkpointing`). The run is first cast to the precision its checkpoint was
        taken in."""
        self._set_precision(max(int(state["step"]) - 1, 0))
        self.collapse.warned = bool(state.get("collapse_warned", False))
        fused = self.compile_mode is not None
        checkpointing.load_state_dict(
            self.state,
            self.callbacks,
            self.strategy,
            self.plan,
            fused,
            state,
            conserves_population=self.sampler.conserves_population,
        )
