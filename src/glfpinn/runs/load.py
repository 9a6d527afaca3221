"""A run directory loaded back: its problem, trained network, config and result, and
predictions at new points."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final, overload

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn.config import RunConfig
from glfpinn.problems.base import Problem
from glfpinn.runs.directory import CHECKPOINT, CONFIG, METRICS, read_config, read_result
from glfpinn.training import TrainResult, predict
from glfpinn.training.network import ModelSpec, build_network
from glfpinn.training.trainer import DTYPES

__all__ = ["Run", "load_run"]


@final
@dataclass(frozen=True)
class Run:
    """A loaded run. ``result`` (result.json as a :class:`~glfpinn.TrainResult`, what
    ``train`` returns; ``result["steps"]`` still reads it as the dict it once was) is None
    while the run is unfinished (the network is then the last checkpoint's)."""

    path: Path
    config: RunConfig
    problem: Problem
    model: nn.Module
    result: TrainResult | None
    #: the training points and the sampler's loss weights of the last checkpoint
    points: Tensor
    unknowns: dict[str, float]

    @overload
    def predict(self, x: np.ndarray) -> np.ndarray: ...

    @overload
    def predict(self, x: Tensor) -> Tensor: ...

    def predict(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """u at ``x`` (n, dim), in chunks: a numpy array in gives float64 numpy out, a tensor in
        gives a tensor of the run's dtype on its device out."""
        as_numpy = not isinstance(x, Tensor)
        param = next(iter(self.model.parameters()))
        xt = torch.as_tensor(np.asarray(x) if as_numpy else x).to(param.device, param.dtype)
        if xt.ndim != 2 or xt.shape[1] != self.problem.dim:
            dim = self.problem.dim
            raise ValueError(
                f"points of shape {tuple(xt.shape)}; this run's problem takes (n, {dim})"
            )
        u = predict(self.model, xt)
        return u.detach().cpu().double().numpy() if as_numpy else u

    def evaluations(self) -> list[dict[str, Any]]:
        """The metrics.jsonl records of the evaluations (step, loss, errors, ...), in order."""
        path = self.path / METRICS
        if not path.exists():
            return []
        records = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
        return [r for r in records if r.get("event") == "eval"]


def load_run(
    path: str | os.PathLike,
    *,
    problem: Problem | None = None,
    model: ModelSpec | None = None,
    device: str | torch.device = "cpu",
) -> Run:
    """The run in ``path``, rebuilt from its config.yaml and its checkpoint.

    The problem and the network come from the config (registry names or import paths, so a
    user's problem in a file is found again); pass ``problem`` or ``model`` (a module of the
    run's architecture, or a factory) where the config could not record them, e.g. a network
    given to the trainer as an instance.
    """
    root = Path(path)
    if not (root / CONFIG).exists():
        raise ValueError(f"{str(root)!r} holds no run ({CONFIG} missing)")
    if not (root / CHECKPOINT).exists():
        raise ValueError(f"run {str(root)!r} has no {CHECKPOINT} yet: nothing to load")
    cfg = read_config(root)
    if problem is None:
        problem = cfg.build_problem()
    net = build_network(
        problem,
        model if model is not None else cfg.build_model(),
        0,  # the weights come from the checkpoint
    ).to(device=torch.device(device), dtype=DTYPES[cfg.dtype])
    try:
        state = torch.load(root / CHECKPOINT, map_location=device, weights_only=True)
        net.load_state_dict(state["model"])
    except Exception as err:  # unpickling or a different architecture: the file does not fit
        raise ValueError(
            f"checkpoint of {str(root)!r} does not fit the network its config describes "
            f"({type(err).__name__}); pass model= with the run's architecture"
        ) from None
    net.eval()
    with torch.no_grad():  # the problem's residual then uses the learned coefficients (raw)
        for name, value in state.get("unknowns", {}).items():
            problem.unknown_parameters()[name].copy_(value)
    finished = read_result(root)
    return Run(
        path=root,
        config=cfg,
        problem=problem,
        model=net,
        result=None if finished is None else TrainResult.from_dict(finished),
        points=state["points"],
        unknowns=problem.unknown_parameters().current(),
    )
