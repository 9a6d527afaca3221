"""One optimizer step: the closure that computes the loss and its gradients, and the stepping of
a stage's optimizer and scheduler, with a line-search optimizer's retry after a non-finite probe;
and what a resample tells the quasi-Newton optimizers (:func:`after_resample`).

The closure returns ``(loss, residuals)``: the loss (reduced over the processes by the
strategy) and the residuals at this process's training points, at the parameters the closure
was called at. Which parameters those are depends on the optimizer:

- **Adam, AdamW, SGD, ...** call the closure once, before the update: the residuals are those
  of the parameters **before** the step;
- **L-BFGS** and the dense quasi-Newton optimizers (:mod:`.quasi_newton`) call it once per
  line-search probe (up to ``max_eval`` times per iteration): the residuals are those of the
  **last probe**, the parameters the line search tried last (mostly the accepted ones; when
  the strong-Wolfe search settles on an earlier point of its bracket, that earlier one's are
  not kept).

Either way they are what the next resample receives for free (``TrainState.last_residuals``),
and ``train_residual_evals`` counts the rows of every probe.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, final

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim import lr_scheduler as schedulers

from glfpinn.strategy import Strategy
from glfpinn.training.loss import NonFiniteLossError, TrainingLoss
from glfpinn.training.optimizers import is_quasi_newton
from glfpinn.training.plan import OptimizationPlan
from glfpinn.training.quasi_newton import QuasiNewton
from glfpinn.training.state import TrainState

__all__ = ["TrainingStep", "take_step", "skips_on_device", "diverged", "after_resample"]

#: ``() -> (loss, residuals)``: one evaluation of the loss and its gradients.
Closure = Callable[[], tuple[Tensor, Tensor]]

#: Optimizers whose fused implementation skips an update on the device when told that the
#: gradients are not finite (``found_inf``, the flag ``torch.amp.GradScaler`` sets).
_SKIP_ON_FOUND_INF = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def skips_on_device(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` can skip a diverged step without the host reading the loss."""
    return type(optimizer) in _SKIP_ON_FOUND_INF and all(
        group.get("fused") for group in optimizer.param_groups
    )


def diverged(step: int, value: object) -> str:
    """The message of a :class:`NonFiniteLossError` at ``step``."""
    return (
        f"the loss became {value} at step {step}; "
        "lower the learning rate or check the problem's parameters"
    )


@final
class TrainingStep:
    """One step of the plan's current stage at the state's points.

    ``stop`` tells whether this process has caught a signal (it rides along the strategy's
    reduction, so every process stops after the same step).
    """

    def __init__(
        self,
        plan: OptimizationPlan,
        loss: TrainingLoss,
        strategy: Strategy,
        params: Sequence[Tensor],
        cuda_graphs: bool,
        stop: Callable[[], bool],
    ) -> None:
        self.plan = plan
        self.loss = loss
        self.strategy = strategy
        self.params = list(params)
        self.cuda_graphs = cuda_graphs
        self.stop = stop

    def closure(self, s: TrainState, optimizer: Optimizer) -> Closure:
        """Zero the gradients, compute the loss at ``s``'s points, backpropagate, reduce over
        the processes; return ``(loss, residuals)``. A non-finite loss raises
        :class:`NonFiniteLossError` unless ``optimizer`` skips it on the device."""
        deferred = skips_on_device(optimizer)
        strategy = self.strategy

        def forward_backward(loss_fn: Any) -> tuple[Tensor, Tensor]:
            optimizer.zero_grad(set_to_none=True)
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            weights = strategy.point_weights(s.weights, s.points)
            loss, r = loss_fn(s.points, weights, s.condition_points)
            loss.backward()
            # the reduced loss, so every process raises together
            loss = strategy.reduce(self.params, loss, self.stop())
            if not deferred and not torch.isfinite(loss):
                raise NonFiniteLossError(diverged(s.step, loss.item()))
            # a CUDA graph's next replay overwrites its outputs; these two outlive it
            if self.cuda_graphs:
                return loss.detach().clone(), r.detach().clone()
            return loss, r.detach()

        return lambda: self.loss.run(forward_backward)

    def __call__(self, s: TrainState) -> Tensor:
        """Take the step; record its loss and residuals in ``s``; return the loss (a 0-d
        tensor left on the device)."""
        index = self.plan.stage_at(s.step)
        optimizer = s.optimizers[index]

        def count_restart() -> None:
            s.costs.lbfgs_restarts += 1

        loss, residuals, rows = take_step(
            optimizer, s.schedulers[index], self.closure(s, optimizer), count_restart, s.step
        )
        s.costs.train_residual_evals += rows
        s.last_residuals = residuals.abs()
        s.record_loss(loss)
        return s.loss


def take_step(
    optimizer: Optimizer,
    scheduler: Any,
    closure: Closure,
    on_restart: Callable[[], None],
    step: int,
) -> tuple[Tensor, Tensor, int]:
    """Optimizer step ``step`` (its ``closure`` computes loss and gradients and returns
    ``(loss, residuals)``), then the scheduler's. Returns the loss, the residuals of the
    closure's last call and the rows of every call's residuals.

    L-BFGS and the dense quasi-Newton optimizers: if a line-search probe meets a non-finite
    loss (the closure raises), the parameters go back to the iteration's start and the
    iteration is redone without the curvature history (which can belong to points that a
    resample has since replaced); ``on_restart`` is told. A second failure is a real divergence
    and propagates.
    """
    calls: list[Tensor] = []

    def loss_only() -> Tensor:  # what torch's optimizers call
        loss, residuals = closure()
        calls.append(residuals)
        return loss

    if is_quasi_newton(type(optimizer)):
        loss = _line_search_step(optimizer, loss_only, on_restart, step)
    else:
        loss = loss_only()
        if skips_on_device(optimizer):
            # a non-finite loss leaves parameters and moments as they were (and NaN gradients
            # where it is finite are caught by the checkpoint's finiteness check)
            optimizer.found_inf = (~torch.isfinite(loss.detach())).to(torch.float32)
        optimizer.step()
    if scheduler is not None:
        if isinstance(scheduler, schedulers.ReduceLROnPlateau):
            scheduler.step(float(loss.detach()))
        else:
            scheduler.step()
    return loss, calls[-1], sum(int(r.shape[0]) for r in calls)


def _line_search_step(
    optimizer: Optimizer,
    closure: Callable[[], Tensor],
    on_restart: Callable[[], None],
    step: int,
) -> Tensor:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    start = [p.detach().clone() for p in params]
    try:
        return optimizer.step(closure)
    except NonFiniteLossError:
        with torch.no_grad():
            for p, p0 in zip(params, start, strict=True):
                p.copy_(p0)
        optimizer.state.clear()
        on_restart()
        name = "L-BFGS" if isinstance(optimizer, torch.optim.LBFGS) else type(optimizer).__name__
        warnings.warn(
            f"the {name} line search met a non-finite loss at step {step}; "
            "the iteration is redone from its start without the curvature history",
            RuntimeWarning,
            stacklevel=4,
        )
        return optimizer.step(closure)


def after_resample(plan: OptimizationPlan, optimizers: Sequence[Optimizer]) -> None:
    """The points changed: every dense quasi-Newton optimizer forgets its gradient (the next
    step evaluates the loss afresh rather than pair a gradient of the old points with one of
    the new); a quasi-Newton stage with ``curvature="reset"`` also drops its curvature history
    (torch's L-BFGS: its whole state). With ``"keep"``, torch's L-BFGS goes on as torch has it:
    its next curvature pair spans the resample."""
    for stage, optimizer in zip(plan.all_stages, optimizers, strict=True):
        if isinstance(optimizer, QuasiNewton):
            optimizer.forget_gradient()
            if stage.curvature == "reset":
                optimizer.reset_curvature()
        elif stage.curvature == "reset":
            optimizer.state.clear()
