"""glfpinn samplers as a Lightning callback for PINA 0.3 physics-informed solvers.

    from glfpinn.integrations.pina import Resampler
    trainer = Trainer(solver, max_epochs=5000, callbacks=[Resampler("glf", period=100)])

Every ``period`` epochs the callback replaces the points of each interior condition (by default
every condition whose domain is a full-dimensional ``CartesianDomain``) with the sampler's
choice, keeping their number, rebuilds the condition's data manager and makes Lightning
rebuild the train dataloader at the next epoch. Both are needed for the points to reach
training: the data manager serves batches from an inner dict that assigning
``condition.data.input`` (what PINA's own ``R3Refinement`` does) leaves unchanged, and with
``batch_size=None`` the single-batch loader caches the batch it was built with. The optimizer
is untouched.

Under DDP every rank computes the new points and rank 0's are broadcast, so all ranks train on
one point set. Loss weights a sampler may return are not applied: PINA's loss has no per-point
weights (a warning says so once).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

try:
    from lightning.pytorch import Callback
    from pina import LabelTensor
    from pina.domain import CartesianDomain
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "glfpinn.integrations.pina needs PINA: pip install 'glfpinn[integrations]'"
    ) from err

import torch
from torch import Tensor

from glfpinn._checks import check_int, short_repr
from glfpinn.domains import Box
from glfpinn.integrations._common import resample_points, residual_norm, resolve_sampler
from glfpinn.samplers.base import Sampler, SamplerState
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD as COVERAGE_THRESHOLD
from glfpinn.samplers.coverage import CollapseMonitor
from glfpinn.training.costs import Costs
from glfpinn.training.scorer import DEFAULT_CHUNK, Scorer

__all__ = ["Resampler"]


def _box_of(domain: object, labels: Sequence[str]) -> Box | None:
    """``domain`` as a glfpinn Box over ``labels`` (in that order), if it is a full box."""
    if not isinstance(domain, CartesianDomain) or domain.fixed:
        return None
    if set(domain.range) != set(labels):
        return None
    return Box([domain.range[v][0] for v in labels], [domain.range[v][1] for v in labels])


class Resampler(Callback):
    """Resample a PINA solver's interior points every ``period`` epochs with a glfpinn sampler.

    Args:
        sampler: a glfpinn :class:`~glfpinn.samplers.Sampler` or a registry name ("glf",
            "rad", "r3", ...). Samplers that grow the set (RAR-D, RAR-G) are refused: PINA's
            data module fixes each condition's size when training starts.
        period: epochs between resamples (with ``batch_size=None`` an epoch is one step).
        conditions: the conditions to resample; None takes every condition whose domain is a
            ``CartesianDomain`` with a range for each input variable (not a boundary).
        seed: seeds the callback's own ``torch.Generator``.
        chunk_size: points per residual evaluation.
        coverage_threshold: a resample whose points' coverage falls below this warns once
            (:class:`~glfpinn.samplers.coverage.CollapseWarning`); every resample's coverage
            is in :attr:`history`.

    :attr:`costs` holds what resampling cost (``residual_evals``, ``scoring_time_s``,
    ``sampling_time_s``, ``resamples``). A condition with several equations is ranked by the
    Euclidean norm of its residual vector.
    """

    def __init__(
        self,
        sampler: Sampler | str = "glf",
        period: int = 100,
        *,
        conditions: str | Sequence[str] | None = None,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        coverage_threshold: float = COVERAGE_THRESHOLD,
    ) -> None:
        self.sampler = resolve_sampler(sampler)
        if not self.sampler.conserves_population:
            raise ValueError(
                f"sampler={self.sampler!r} grows the point set; PINA fixes each condition's "
                "size at set-up: use one that keeps it (glf, rad, r3, rsmote, pacmann, ...)"
            )
        self.period = check_int("period", period, minimum=1)
        if isinstance(conditions, str):
            conditions = [conditions]
        if conditions is not None and not all(isinstance(c, str) for c in conditions):
            raise ValueError(f"conditions={short_repr(conditions)} must be condition names")
        self.conditions = None if conditions is None else list(conditions)
        self.seed = check_int("seed", seed)
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.monitor = CollapseMonitor(coverage_threshold)
        #: each resample's ``info`` per condition (its ``coverage`` and the sampler's figures)
        self.history: list[dict] = []
        self.costs = Costs()
        self.states: dict[str, SamplerState] = {}
        self.generator: torch.Generator | None = None
        self._user_reload: int | None = None
        self._warned_weights = False

    def __repr__(self) -> str:
        return (
            f"Resampler(sampler={self.sampler!r}, period={self.period}, "
            f"conditions={self.conditions!r}, seed={self.seed}, chunk_size={self.chunk_size})"
        )

    @property
    def residual_evals(self) -> int:
        """Residual evaluations spent by resampling so far."""
        return self.costs.residual_evals

    def on_train_start(self, trainer, pl_module) -> None:
        problem = pl_module.problem
        names = self.conditions
        if names is None:
            names = [
                name
                for name, cond in problem.conditions.items()
                if hasattr(cond, "domain")
                and _box_of(problem.domains[cond.domain], cond.data.input.labels) is not None
            ]
            if not names:
                raise ValueError(
                    "no condition has a full CartesianDomain; name the ones to resample "
                    "with conditions=[...]"
                )
        self.domains: dict[str, Box] = {}
        for name in names:
            cond = problem.conditions.get(name)
            if cond is None or not hasattr(cond, "domain"):
                allowed = [n for n, c in problem.conditions.items() if hasattr(c, "domain")]
                raise ValueError(
                    f"condition {name!r} is not a domain condition; allowed: {', '.join(allowed)}"
                )
            domain = problem.domains[cond.domain]
            box = _box_of(domain, cond.data.input.labels)
            if box is None:
                raise ValueError(
                    f"condition {name!r} lives on {type(domain).__name__} {cond.domain!r}; the "
                    "Resampler supports a CartesianDomain ranging over every input variable"
                )
            self.domains[name] = box
        device = pl_module.device
        if self.generator is None:
            self.generator = torch.Generator(device=device).manual_seed(self.seed)
        for name in self.domains:
            if name not in self.states:
                self.states[name] = self.sampler.init_state(self._points(pl_module, name))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # The dataloader was rebuilt before this hook: give the user's setting back.
        if self._user_reload is not None:
            trainer.reload_dataloaders_every_n_epochs = self._user_reload
            self._user_reload = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if (trainer.current_epoch + 1) % self.period == 0:
            self.resample(trainer, pl_module)

    def resample(self, trainer, pl_module) -> None:
        """Replace the points of every resampled condition now."""
        for name, domain in self.domains.items():
            cond = pl_module.problem.conditions[name]
            old = cond.data.input
            out = resample_points(
                self.sampler,
                self.states[name],
                self._points(pl_module, name),
                domain,
                int(trainer.global_step),
                self.generator,
                Scorer(self._residual_fn(pl_module, name), self.chunk_size, self.costs),
                self.monitor,
            )
            self.history.append({"step": int(trainer.global_step), "condition": name, **out.info})
            self.states[name] = out.state
            if out.weights is not None and not self._warned_weights:
                self._warned_weights = True
                warnings.warn(
                    f"{self.sampler!r} returned loss weights; PINA has no per-point loss "
                    "weights, so they are not applied",
                    stacklevel=2,
                )
            points = trainer.strategy.broadcast(out.points.detach(), src=0)
            new = LabelTensor(points.to(old.device, old.dtype), list(old.labels))
            # Rebuilt through the condition's own store_data: the data manager serves batches
            # from its inner dict, so assigning ``data.input`` (R3Refinement's way) is not seen.
            cond.data = cond.store_data(input=new, equation=cond.equation)
        if self._user_reload is None:
            self._user_reload = trainer.reload_dataloaders_every_n_epochs
        trainer.reload_dataloaders_every_n_epochs = 1

    def _points(self, pl_module, name: str) -> Tensor:
        x = pl_module.problem.conditions[name].data.input
        return x.as_subclass(Tensor).detach().to(self.generator.device)

    def _residual_fn(self, pl_module, name: str):
        cond = pl_module.problem.conditions[name]
        labels = list(cond.data.input.labels)

        def residual(x: Tensor) -> Tensor:
            return cond.evaluate({"input": LabelTensor(x, labels)}, pl_module).as_subclass(Tensor)

        return lambda x: residual_norm(pl_module, residual, x)
