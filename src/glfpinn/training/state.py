"""Everything that evolves during a run, in one object; a checkpoint is its ``state_dict``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from glfpinn._tree import tree_to
from glfpinn.problems.unknowns import UnknownParameters
from glfpinn.samplers.base import SamplerState
from glfpinn.training.costs import Costs

if TYPE_CHECKING:
    from glfpinn.problems.base import Problem
    from glfpinn.samplers.base import Sampler
    from glfpinn.strategy import Strategy
    from glfpinn.training.network import ModelSpec
    from glfpinn.training.plan import OptimizationPlan

__all__ = ["TrainState", "tree_to"]


@final
@dataclass
class TrainState:
    """The evolving part of a run: enough to resume it exactly.

    The network's parameters, an inverse problem's unknowns and the optimizers' moments, the
    training points and the sampler's loss weights and state, the condition points, the sampling
    generator, the residuals of the last step (which the next resample gets for free), the last
    loss and evaluation, the costs and the wall-clock time.
    """

    model: nn.Module
    optimizers: list[Optimizer]
    schedulers: list[Any]
    points: Tensor
    sampler_state: SamplerState
    condition_points: dict[str, Tensor]
    generator: torch.Generator
    weights: Tensor | None = None
    #: an inverse problem's trainable coefficients, raw (before their transforms; empty for a
    #: forward problem)
    unknowns: UnknownParameters = field(default_factory=lambda: UnknownParameters({}))
    step: int = 0
    last_residuals: Tensor | None = None
    #: the last step's loss: a 0-d tensor left on the device, which reading synchronises with
    loss: Tensor | None = None
    #: the first step whose loss was not finite (-1: none), also left on the device: a step
    #: need not wait for the device to learn whether it diverged (see :meth:`record_loss`)
    nonfinite_at: Tensor | None = None
    #: the first evaluation (before any step) and the latest one
    initial_metrics: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    costs: Costs = field(default_factory=Costs)
    #: wall-clock seconds of the run before the current ``fit`` call
    elapsed_before: float = 0.0
    _running_since: float | None = None

    @classmethod
    def initial(
        cls,
        problem: Problem,
        sampler: Sampler,
        model: ModelSpec | None,
        plan: OptimizationPlan,
        strategy: Strategy,
        seeds: tuple[int, int],
        *,
        n_points: int,
        n_condition: int,
        device: torch.device,
        dtype: torch.dtype,
        fused: bool,
        name: str,
    ) -> tuple[TrainState, list[Tensor]]:
        """A run's state before its first step, and the parameters its optimizers train: the
        network initialised from ``seeds[0]``, the initial points and the condition points drawn
        from the sampling stream ``seeds[1]`` (this process's share, as ``strategy`` says), and
        every stage's optimizer and scheduler, built now so they live for the whole run (fused
        with compiling, the performance mode; eager keeps the foreach implementation)."""
        from glfpinn.training.network import build_network
        from glfpinn.training.resampling import check_points

        net = build_network(problem, model, seeds[0]).to(device, dtype)
        # an inverse problem's coefficients train with the network (in place: the problem's
        # residual keeps reading the same tensors)
        unknowns = problem.unknown_parameters().to(device, dtype)
        generator = torch.Generator(device).manual_seed(seeds[1])
        points, sampler_state = strategy.initial_points(
            sampler, n_points, problem.domain, generator, dtype, name
        )
        check_points(points, problem.dim, repr(name))
        condition_points = problem.condition_points(n_condition, generator, dtype)
        params = [*net.parameters(), *unknowns.values()]
        optimizers, schedulers = plan.build(
            list(net.parameters()), fused=fused, unknowns=list(unknowns.values())
        )
        state = cls(
            model=net,
            optimizers=optimizers,
            schedulers=schedulers,
            points=points,
            sampler_state=sampler_state,
            condition_points=strategy.broadcast(condition_points),
            generator=generator,
            unknowns=unknowns,
        )
        return state, params

    # ------------------------------------------------------------------------------- loss
    @property
    def last_loss(self) -> float:
        """The last step's loss as a number (NaN before the first step)."""
        return math.nan if self.loss is None else float(self.loss)

    def record_loss(self, loss: Tensor) -> None:
        """Keep step ``step``'s loss, noting on the device whether it was the first non-finite
        one, so nothing here waits for the device."""
        loss = loss.detach()
        if self.nonfinite_at is None:
            self.nonfinite_at = torch.full((), -1, dtype=torch.int64, device=loss.device)
        first_bad = ~torch.isfinite(loss) & (self.nonfinite_at < 0)
        self.nonfinite_at = torch.where(first_bad, self.step, self.nonfinite_at)
        self.loss = loss

    def first_nonfinite_step(self) -> int | None:
        """The first step whose loss was NaN or Inf, if any (reading it synchronises)."""
        if self.nonfinite_at is None:
            return None
        step = int(self.nonfinite_at)
        return None if step < 0 else step

    # ------------------------------------------------------------------------------ clock
    def start_clock(self) -> None:
        self._running_since = time.perf_counter()

    def stop_clock(self) -> None:
        self.elapsed_before = self.elapsed()
        self._running_since = None

    def elapsed(self) -> float:
        """Wall-clock seconds spent in ``fit``, over every call and every resumed process."""
        running = 0.0 if self._running_since is None else time.perf_counter() - self._running_since
        return self.elapsed_before + running

    def finite(self) -> bool:
        """Whether every parameter, unknown and optimizer moment is finite and no loss has been
        NaN or Inf (what a checkpoint may hold)."""
        if self.first_nonfinite_step() is not None:
            return False
        tensors = [*self.model.parameters(), *self.unknowns.values()]
        for optimizer in self.optimizers:
            for slots in optimizer.state.values():
                tensors += [
                    v for v in slots.values() if isinstance(v, Tensor) and v.is_floating_point()
                ]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def unknown_values(self) -> dict[str, float]:
        """The unknowns' values (after their transforms)."""
        return self.unknowns.current()

    # ------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "unknowns": {name: value.detach().clone() for name, value in self.unknowns.items()},
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "schedulers": [None if s is None else s.state_dict() for s in self.schedulers],
            "points": self.points,
            "weights": self.weights,
            "sampler_state": self.sampler_state,
            "condition_points": self.condition_points,
            "generator": self.generator.get_state(),
            "last_residuals": self.last_residuals,
            "last_loss": self.last_loss,
            "initial_metrics": dict(self.initial_metrics),
            "metrics": dict(self.metrics),
            "elapsed_s": self.elapsed(),
            "costs": self.costs.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError(
                f"the checkpoint has {len(state['optimizers'])} optimizer stages, "
                f"the run {len(self.optimizers)}"
            )
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            for name, value in state.get("unknowns", {}).items():
                self.unknowns[name].copy_(value)
        for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        for sched, sched_state in zip(self.schedulers, state["schedulers"], strict=True):
            if sched is not None and sched_state is not None:
                sched.load_state_dict(sched_state)
        device, dtype = self.points.device, self.points.dtype
        self.points = state["points"].to(device, dtype)
        self.weights = tree_to(state["weights"], device)
        self.sampler_state = tree_to(state["sampler_state"], device)
        self.condition_points = tree_to(state["condition_points"], device)
        self.generator.set_state(state["generator"].cpu())
        self.last_residuals = tree_to(state["last_residuals"], device)
        self.loss = torch.tensor(float(state["last_loss"]), dtype=dtype, device=device)
        self.nonfinite_at = None  # a checkpoint holds a finite state only
        self.initial_metrics = dict(state["initial_metrics"])
        self.metrics = dict(state["metrics"])
        self.elapsed_before = float(state["elapsed_s"])
        self._running_since = None
        self.costs.load_state_dict(state["costs"])
