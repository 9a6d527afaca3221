"""A run directory loaded back: its problem, trained network, config and result, and
predictions at new points.

Loading is data only unless the caller trusts the directory: a problem or network the config
names by import path (code) is imported only with ``trust=True`` or not at all, where the
caller passes it; built-in names need no trust. The checkpoint must be whole (its checksum)
and of the run config.yaml describes (its fingerprint), or loading is refused in one line.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final, overload

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn._io import read_jsonl
from glfpinn.config import RunConfig
from glfpinn.plugins import untrusted
from glfpinn.problems.base import Problem
from glfpinn.runs import fingerprint as fp
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
    while the run is unfinished, or being extended by a resume (the network is then the last
    checkpoint's)."""

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
        """u at ``x`` (n, dim), shape (n,) (a system: (n, n_outputs)), in chunks: a numpy
        array in gives float64 numpy out, a tensor in gives a tensor of the run's dtype on its
        device out."""
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
        return [r for r in read_jsonl(path) if r.get("event") == "eval"]


def load_run(
    path: str | os.PathLike,
    *,
    problem: Problem | None = None,
    model: ModelSpec | None = None,
    device: str | torch.device = "cpu",
    trust: bool = False,
) -> Run:
    """The run in ``path``, rebuilt from its config.yaml and its checkpoint.

    The problem and the network come from the config: a built-in name is built at once; an
    import path (a user's problem in a file, a network factory) is code, imported only with
    ``trust=True`` (else a one-line ValueError naming it). Pass ``problem`` or ``model`` (a
    module of the run's architecture, or a factory) to use your own instead, and where the
    config could not record them, e.g. a network given to the trainer as an instance.
    """
    root = Path(path)
    if not (root / CONFIG).exists():
        raise ValueError(f"{str(root)!r} holds no run ({CONFIG} missing)")
    if not (root / CHECKPOINT).exists():
        raise ValueError(f"run {str(root)!r} has no {CHECKPOINT} yet: nothing to load")
    cfg = read_config(root)
    state = _read_checkpoint(root, cfg, device)
    gate = contextlib.nullcontext() if trust else untrusted(f"the run directory {str(root)!r}")
    with gate:
        if problem is None:
            problem = cfg.build_problem()
        spec = model if model is not None else cfg.build_model()
    # the weights come from the checkpoint, in its precision (a float64 stage's, say)
    weights = [v for v in state["model"].values() if torch.is_tensor(v) and v.is_floating_point()]
    dtype = weights[0].dtype if weights else DTYPES[cfg.dtype]
    net = build_network(problem, spec, 0).to(device=torch.device(device), dtype=dtype)
    try:
        net.load_state_dict(state["model"])
    except Exception as err:  # a different architecture: the file does not fit
        raise ValueError(
            f"checkpoint of {str(root)!r} does not fit the network its config describes "
            f"({type(err).__name__}); pass model= with the run's architecture (--model on the "
            "command line)"
        ) from None
    net.eval()
    with torch.no_grad():  # the problem's residual then uses the learned coefficients (raw)
        for name, value in state.get("unknowns", {}).items():
            problem.unknown_parameters()[name].copy_(value)
    return Run(
        path=root,
        config=cfg,
        problem=problem,
        model=net,
        result=_result_of(root, int(state["step"])),
        points=state["points"],
        unknowns=problem.unknown_parameters().current(),
    )


def _read_checkpoint(root: Path, cfg: RunConfig, device: str | torch.device) -> dict[str, Any]:
    """The checkpoint's state, refused in one line when it cannot be read, is damaged (its
    checksum) or belongs to another run than ``cfg`` (config.yaml) describes."""
    where = repr(str(root / CHECKPOINT))
    try:
        state = torch.load(root / CHECKPOINT, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure: the file is unusable
        raise ValueError(f"checkpoint {where} cannot be read ({type(err).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"checkpoint {where} is damaged (not a run's state)")
    if not isinstance(state.get("points"), torch.Tensor):
        raise ValueError(f"checkpoint {where} is damaged (it holds no training points)")
    state, record = fp.unseal(state, where)
    if record is not None:
        fp.check(
            record.get("config"),
            fp.fingerprint(cfg.to_dict()),
            f"{CONFIG} of {str(root)!r}",
            where,
            f"restore {CONFIG} as the run wrote it",
        )
    return state


def _result_of(root: Path, step: int) -> TrainResult | None:
    """result.json if it is the result of the checkpoint's network: a resume extending a
    finished run keeps the old result.json until it writes its own."""
    result = read_result(root)
    if result is None or result["steps"] != step:
        return None
    return TrainResult.from_dict(result)
