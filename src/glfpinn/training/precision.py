"""A stage's precision switch: everything a run computes with is cast to the stage's dtype when
the stage starts (``Stage(..., dtype="float64")``, ``--stage ssbroyden:steps=2000,dtype=float64``).

Cast, in place where other objects hold a reference: the network's parameters and buffers
(``Module.to``, which keeps the parameter objects the optimizers hold), an inverse problem's
unknowns, the training points, their weights and the last residuals, the condition points, the
sampler's state, every optimizer's state (moments, curvature; not the step counts), the loss's
observations and the evaluation's point sets, held-out condition points included (the same
points, in the new precision). The
compiled loss recompiles on its own: ``torch.compile`` guards on the inputs' dtype.

A resumed run is cast to the precision of its checkpoint's step before the checkpoint is loaded,
so a resume across the switch continues bit for bit.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from glfpinn._tree import tree_cast_floats
from glfpinn.training.evaluator import EvaluationSet
from glfpinn.training.loss import TrainingLoss
from glfpinn.training.state import TrainState

__all__ = ["promote"]


def promote(
    state: TrainState, loss: TrainingLoss, validation: EvaluationSet, dtype: torch.dtype
) -> EvaluationSet:
    """Cast the run to ``dtype`` (see the module); returns the evaluation set in ``dtype``."""
    state.model.to(dtype)
    with torch.no_grad():
        for value in state.unknowns.values():
            value.data = value.data.to(dtype)
    state.points = state.points.to(dtype)
    state.weights = tree_cast_floats(state.weights, dtype)
    state.last_residuals = tree_cast_floats(state.last_residuals, dtype)
    state.condition_points = tree_cast_floats(state.condition_points, dtype)
    state.sampler_state = tree_cast_floats(state.sampler_state, dtype)
    if state.loss is not None:
        state.loss = state.loss.to(dtype)
    for optimizer in state.optimizers:
        for slots in optimizer.state.values():
            for key, value in slots.items():
                # step counts stay as the optimizer keeps them (fused Adam wants float32)
                if key != "step" and isinstance(value, Tensor) and value.is_floating_point():
                    slots[key] = value.to(dtype)
    loss.observed = [measured.to(dtype) for measured in loss.observed]
    misfits = validation.condition_misfits
    return dataclasses.replace(
        validation,
        held_out=validation.held_out.to(dtype),
        x_test=None if validation.x_test is None else validation.x_test.to(dtype),
        condition_misfits=dataclasses.replace(
            misfits, points=tree_cast_floats(misfits.points, dtype)
        ),
    )
