"""The training loop: optimizer steps, resampling on a schedule, evaluation, cost accounting.

The trainer owns the collocation points. At a resample it hands the sampler the residuals its
last optimizer step computed anyway (free), swaps in the new points, and keeps every optimizer's
state: changing the points never resets Adam or L-BFGS. Everything that evolves lives in
``Trainer.state_dict()``, so a checkpoint resumes a run exactly.
"""

from __future__ import annotations

import math
import resource
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn._allocator import retain_freed_memory
from glfpinn.callbacks import Callback, ProgressBar
from glfpinn.problems.base import Problem
from glfpinn.samplers.base import Sampler, SamplingContext, check_positive
from glfpinn.schedules import Every, Schedule

__all__ = ["Trainer", "TrainResult", "NonFiniteLossError", "train", "resolve_device", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


T = TypeVar("T")
#: ``(points, weights) -> (loss, residuals)``: the eager or the compiled training loss.
LossFn = Callable[[Tensor, "Tensor | None"], tuple[Tensor, Tensor]]


class NonFiniteLossError(FloatingPointError):
    """The loss or a residual became NaN or Inf; the last good checkpoint is kept."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else must be a device torch knows."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device={device!r} is not a valid torch device (cpu, cuda, auto)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for, but CUDA is not available here; use cpu")
    return dev


def _seeds(seed: int) -> tuple[int, int]:
    """Independent streams for the network's initialisation and for sampling."""
    a, b = np.random.SeedSequence(seed).generate_state(2)
    return int(a), int(b)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak allocated by torch on the device. CPU: the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def duplicate_fraction(points: Tensor) -> float:
    """Fraction of rows that repeat an earlier row. Rows are compared through one float64
    projection on fixed irrational weights (a 1-D unique is ~10x cheaper than unique(dim=0));
    distinct rows colliding exactly would need a measure-zero coincidence."""
    if points.shape[0] == 0:
        return 0.0
    weights = torch.arange(1, points.shape[1] + 1, dtype=torch.float64, device=points.device)
    keys = points.to(torch.float64) @ torch.sqrt(weights + 1.0)
    return 1.0 - torch.unique(keys).shape[0] / points.shape[0]


@dataclass
class TrainResult:
    problem: str
    sampler: str
    sampler_repr: str
    seed: int
    steps: int
    adam_steps: int
    lbfgs_steps: int
    n_points: int
    l2_relative_error: float
    initial_l2_relative_error: float
    final_loss: float
    wall_time_s: float
    sampling_time_s: float
    scoring_time_s: float
    residual_evals: int
    train_residual_evals: int
    resamples: int
    peak_memory_mb: float
    device: str
    dtype: str
    glfpinn_version: str
    torch_version: str
    #: L-BFGS steps redone from their start without curvature history after a non-finite probe.
    lbfgs_restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Trains ``problem``'s network on points chosen by ``sampler``.

    Args:
        steps: Adam steps; ``lbfgs_steps`` L-BFGS iterations (strong Wolfe) follow them, and
            the schedule keeps resampling through both stages.
        n_points: interior collocation points (default: the problem's).
        schedule: when to resample (default: every ``problem.defaults["resample_every"]``).
        eval_every: steps between L2 evaluations on the test set (and at the last step).
        score_chunk: points per chunk when a sampler scores new points (bounds memory).
        compile: compute the training loss under ``torch.compile`` (forward and backward
            fused; residuals built on :func:`glfpinn.ops.gradient_and_axis_jet` then take its
            first-order Taylor engine). The first step pays the compilation (tens of seconds
            on a CPU); if compiling fails, a warning says why and training goes on eagerly.
        retain_memory: on the CPU, have the allocator keep freed memory for reuse instead of
            page-faulting it back every step (process-wide; see ``glfpinn._allocator``).
    """

    def __init__(
        self,
        problem: Problem,
        sampler: Sampler,
        *,
        steps: int,
        model: nn.Module | None = None,
        n_points: int | None = None,
        schedule: Schedule | None = None,
        lr: float = 1e-3,
        lbfgs_steps: int = 0,
        eval_every: int = 100,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        compile: bool = False,
        retain_memory: bool = True,
        hidden: Sequence[int] | None = None,
        n_condition: int = 1000,
        score_chunk: int = 20_000,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
        sampler_name: str | None = None,
    ) -> None:
        check_positive("steps", steps)
        check_positive("lbfgs_steps", lbfgs_steps, allow_zero=True)
        check_positive("lr", lr)
        check_positive("eval_every", eval_every)
        check_positive("n_condition", n_condition)
        check_positive("score_chunk", score_chunk)
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise ValueError(f"dtype={dtype!r} is unknown; allowed: {', '.join(DTYPES)}")
            dtype = DTYPES[dtype]
        n_points = int(n_points if n_points is not None else problem.defaults.get("n_points", 2000))
        check_positive("n_points", n_points)
        self.problem = problem
        self.sampler = sampler
        self.sampler_name = sampler_name or type(sampler).__name__.lower()
        self.device = resolve_device(device)
        self.dtype = dtype
        self.adam_steps = int(steps)
        self.lbfgs_steps = int(lbfgs_steps)
        self.total_steps = self.adam_steps + self.lbfgs_steps
        self.schedule = schedule or Every(problem.defaults.get("resample_every", 500))
        self.eval_every = int(eval_every)
        self.score_chunk = int(score_chunk)
        self.seed = int(seed)
        self.callbacks: list[Callback] = list(callbacks)
        if progress:
            self.callbacks.append(ProgressBar())

        init_seed, sample_seed = _seeds(self.seed)
        if model is None:
            hidden = tuple(hidden or problem.defaults.get("hidden", (64, 64, 64)))
            model = problem.build_model(hidden, generator=torch.Generator().manual_seed(init_seed))
        self.model = model.to(self.device, self.dtype)
        self.compile = bool(compile)
        self._compiled_loss = torch.compile(self._loss_terms) if self.compile else None
        if retain_memory and self.device.type == "cpu":
            retain_freed_memory()
        self.generator = torch.Generator(self.device).manual_seed(sample_seed)
        self.points = sampler.initial_points(n_points, problem.domain, self.generator, dtype)
        self.weights: Tensor | None = None
        self.sampler_state = sampler.init_state(self.points)
        self.condition_points = problem.condition_points(n_condition, self.generator, dtype)
        # fused (one kernel for all parameters) goes with compile, the performance mode; the
        # eager default keeps the foreach implementation its recorded results were made with
        self.adam = torch.optim.Adam(self.model.parameters(), lr=lr, fused=self.compile or None)
        self.lbfgs = torch.optim.LBFGS(
            self.model.parameters(),
            lr=1.0,
            max_iter=1,  # one iteration per trainer step, so the schedule sees every iteration
            max_eval=25,  # torch's default, max_iter * 5 // 4 = 1, leaves no line search at all
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
        self.step = 0
        #: A callback sets this to end training after the current step (early stopping).
        self.should_stop = False
        self.last_residuals: Tensor | None = None
        self.last_loss = math.nan
        self.initial_l2 = math.nan
        self.last_l2 = math.nan
        self.elapsed_before = 0.0
        self.costs = {
            "sampling_time_s": 0.0,
            "scoring_time_s": 0.0,
            "residual_evals": 0,
            "train_residual_evals": 0,
            "resamples": 0,
            "lbfgs_restarts": 0,
        }
        x_test, u_test = problem.test_set()
        self.x_test = torch.as_tensor(x_test, dtype=dtype, device=self.device)
        self.u_test = torch.as_tensor(u_test, dtype=torch.float64, device=self.device)
        self._t_start = time.perf_counter()

    # ----------------------------------------------------------------- losses and residuals
    def loss(self) -> tuple[Tensor, Tensor]:
        """Training loss at the current points and the residuals it computed."""
        return self._with_compile_fallback(lambda fn: fn(self.points, self.weights))

    def _with_compile_fallback(self, work: Callable[[LossFn], T]) -> T:
        """``work(loss function)``, compiled when asked; if compiling fails (in the forward or,
        when the compiler builds it lazily, in the backward), a warning says why and ``work``
        runs again eagerly, for this and every later step."""
        if self._compiled_loss is not None:
            try:
                return work(self._compiled_loss)
            except (NonFiniteLossError, torch.OutOfMemoryError):
                raise
            except Exception as err:  # noqa: BLE001 - any compiler failure: go on eagerly
                self._compiled_loss = None
                warnings.warn(
                    f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); "
                    "training continues without it",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return work(self._loss_terms)

    def _loss_terms(self, points: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
        r = self.problem.residual(self.model, points)
        sq = r**2
        loss = (sq * weights).mean() if weights is not None else sq.mean()
        cond = self.problem.condition_loss(self.model, self.condition_points)
        return (loss if cond is None else loss + cond), r

    def score(self, x: Tensor) -> Tensor:
        """|residual| at new points, in chunks, counted and timed as the sampler's cost."""
        t0 = time.perf_counter()
        parts = []
        for chunk in x.split(self.score_chunk):
            with torch.enable_grad():
                parts.append(self.problem.residual(self.model, chunk).detach().abs())
        self.costs["residual_evals"] += int(x.shape[0])
        self.costs["scoring_time_s"] += time.perf_counter() - t0
        return torch.cat(parts) if parts else x.new_empty(0)

    def score_with_gradient(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """|residual| and d(r^2)/dx at ``x``, counted and timed like :meth:`score`."""
        t0 = time.perf_counter()
        rs, grads = [], []
        for chunk in x.split(self.score_chunk):
            xc = chunk.detach().requires_grad_(True)
            with torch.enable_grad():
                r = self.problem.residual(self.model, xc)
                (g,) = torch.autograd.grad((r**2).sum(), xc)
            rs.append(r.detach().abs())
            grads.append(g.detach())
        self.costs["residual_evals"] += int(x.shape[0])
        self.costs["scoring_time_s"] += time.perf_counter() - t0
        return torch.cat(rs), torch.cat(grads)

    # ------------------------------------------------------------------------- the loop
    def resample(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        evals0, scoring0 = self.costs["residual_evals"], self.costs["scoring_time_s"]
        ctx = SamplingContext(
            points=self.points,
            residuals=self.last_residuals,
            residual_fn=self.score,
            domain=self.problem.domain,
            step=self.step,
            generator=self.generator,
            residual_grad_fn=self.score_with_gradient,
        )
        out = self.sampler.resample(ctx, self.sampler_state)
        pts = out.points.detach()
        if pts.ndim != 2 or pts.shape[1] != self.problem.dim or not bool(torch.isfinite(pts).all()):
            raise RuntimeError(
                f"sampler {self.sampler!r} returned invalid points of shape {tuple(pts.shape)}"
            )
        self.points = pts.to(self.device, self.dtype)
        self.weights = None if out.weights is None else out.weights.detach().to(self.points)
        self.sampler_state = out.state
        self.last_residuals = None
        elapsed = time.perf_counter() - t0
        self.costs["sampling_time_s"] += elapsed
        self.costs["resamples"] += 1
        info = {
            "step": self.step,
            "n_points": int(pts.shape[0]),
            "duplicate_fraction": duplicate_fraction(pts),
            "residual_evals": self.costs["residual_evals"] - evals0,
            "scoring_time_s": self.costs["scoring_time_s"] - scoring0,
            "time_s": elapsed,
            **out.info,
        }
        for cb in self.callbacks:
            cb.on_resample(self, info)
        return info

    def optimizer_step(self) -> float:
        """One Adam step, or one L-BFGS iteration once Adam's steps are done; returns the loss."""
        in_lbfgs = self.step >= self.adam_steps
        optimizer = self.lbfgs if in_lbfgs else self.adam
        residuals: list[Tensor] = []

        def forward_backward(loss_fn: LossFn) -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss, r = loss_fn(self.points, self.weights)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"the loss became {loss.item()} at step {self.step}; "
                    "lower the learning rate or check the problem's parameters"
                )
            loss.backward()
            residuals.append(r.detach())
            return loss

        def closure() -> Tensor:
            return self._with_compile_fallback(forward_backward)

        if in_lbfgs:
            loss = self._lbfgs_step(closure)
        else:
            loss = closure()
            optimizer.step()
        self.costs["train_residual_evals"] += sum(int(r.shape[0]) for r in residuals)
        self.last_residuals = residuals[-1].abs()
        return float(loss.detach())

    def _lbfgs_step(self, closure: Callable[[], Tensor]) -> Tensor:
        """One L-BFGS iteration; if a line-search probe meets a non-finite loss, the parameters
        go back to the iteration's start and the iteration is redone without the curvature
        history (which can belong to points that a resample has since replaced). A second
        failure is a real divergence and raises."""
        params = [p for group in self.lbfgs.param_groups for p in group["params"]]
        start = [p.detach().clone() for p in params]
        try:
            return self.lbfgs.step(closure)
        except NonFiniteLossError:
            with torch.no_grad():
                for p, p0 in zip(params, start, strict=True):
                    p.copy_(p0)
            self.lbfgs.state.clear()
            self.costs["lbfgs_restarts"] += 1
            warnings.warn(
                f"an L-BFGS line search met a non-finite loss at step {self.step}; the "
                "iteration is redone from its start without the curvature history",
                RuntimeWarning,
                stacklevel=3,
            )
            return self.lbfgs.step(closure)

    @torch.no_grad()
    def evaluate(self) -> float:
        """L2 relative error of the network on the problem's test set."""
        u = torch.cat([self.model(x).reshape(-1) for x in self.x_test.split(65536)])
        err = torch.linalg.vector_norm(u.to(torch.float64) - self.u_test)
        return float(err / torch.linalg.vector_norm(self.u_test))

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._t_start

    def fit(self) -> TrainResult:
        self._t_start = time.perf_counter()
        if self.step == 0:
            self.initial_l2 = self.last_l2 = self.evaluate()
        for cb in self.callbacks:
            cb.on_train_start(self)
        while self.step < self.total_steps and not self.should_stop:
            if self.schedule.due(self.step):
                self.resample()
            self.last_loss = self.optimizer_step()
            self.step += 1
            for cb in self.callbacks:
                cb.on_train_batch_end(self, self.step - 1, self.last_loss)
            if self.step % self.eval_every == 0 or self.step == self.total_steps:
                self.last_l2 = self.evaluate()
                metrics = {
                    "step": self.step,
                    "loss": self.last_loss,
                    "l2_relative_error": self.last_l2,
                    "elapsed_s": self.elapsed(),
                }
                for cb in self.callbacks:
                    cb.on_validation_end(self, metrics)
        result = self.result()
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def result(self) -> TrainResult:
        import glfpinn

        return TrainResult(
            problem=self.problem.name,
            sampler=self.sampler_name,
            sampler_repr=repr(self.sampler),
            seed=self.seed,
            steps=self.step,
            adam_steps=self.adam_steps,
            lbfgs_steps=self.lbfgs_steps,
            n_points=int(self.points.shape[0]),
            l2_relative_error=self.last_l2,
            initial_l2_relative_error=self.initial_l2,
            final_loss=self.last_loss,
            wall_time_s=self.elapsed(),
            sampling_time_s=self.costs["sampling_time_s"],
            scoring_time_s=self.costs["scoring_time_s"],
            residual_evals=self.costs["residual_evals"],
            train_residual_evals=self.costs["train_residual_evals"],
            resamples=self.costs["resamples"],
            lbfgs_restarts=self.costs["lbfgs_restarts"],
            peak_memory_mb=peak_memory_mb(self.device),
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            glfpinn_version=glfpinn.__version__,
            torch_version=torch.__version__,
        )

    # ------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything that evolves during training: enough to resume exactly."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "adam": self.adam.state_dict(),
            "lbfgs": self.lbfgs.state_dict(),
            "points": self.points,
            "weights": self.weights,
            "sampler_state": self.sampler_state,
            "condition_points": self.condition_points,
            "generator": self.generator.get_state(),
            "last_residuals": self.last_residuals,
            "last_loss": self.last_loss,
            "initial_l2": self.initial_l2,
            "last_l2": self.last_l2,
            "elapsed_s": self.elapsed(),
            "costs": dict(self.costs),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
        self.adam.load_state_dict(state["adam"])
        for group in self.adam.param_groups:  # the checkpoint's flag is the mode it ran in
            group["fused"] = self.compile or None
        self.lbfgs.load_state_dict(state["lbfgs"])
        self.points = state["points"].to(self.device, self.dtype)
        self.weights = state["weights"]
        self.sampler_state = state["sampler_state"]
        self.condition_points = state["condition_points"]
        self.generator.set_state(state["generator"])
        self.last_residuals = state["last_residuals"]
        self.last_loss = float(state["last_loss"])
        self.initial_l2 = float(state["initial_l2"])
        self.last_l2 = float(state["last_l2"])
        self.elapsed_before = float(state["elapsed_s"])
        self.costs.update(state["costs"])  # checkpoints from before a counter existed lack it
        for cb, cb_state in zip(self.callbacks, state.get("callbacks", [])):
            cb.load_state_dict(cb_state)


def train(problem: Problem, sampler: Sampler, *, steps: int, **kwargs: Any) -> TrainResult:
    """Train ``problem`` with ``sampler`` for ``steps`` Adam steps; see :class:`Trainer`."""
    return Trainer(problem, sampler, steps=steps, **kwargs).fit()
