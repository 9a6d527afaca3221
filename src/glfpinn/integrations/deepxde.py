"""glfpinn samplers as a DeepXDE callback: GLF (or RAD, R3, PACMANN, ...) in one line.

    from glfpinn.integrations.deepxde import Resampler
    model.train(iterations=10000, callbacks=[Resampler("glf", period=100)])

Every ``period`` iterations the callback replaces the PDE's training points
(``data.train_x_all``) with the sampler's choice, the way DeepXDE's ``PDEPointResampler``
rebuilds them: the boundary/initial-condition points (``data.train_x_bc``) stay, the model is
not recompiled and the optimizer (with its Adam moments or L-BFGS history) is kept.

Iterations are counted on the model's own step counter, so L-BFGS iterations count too. DeepXDE
runs its PyTorch L-BFGS in chunks of ``LBFGS_options["iter_per_step"]`` iterations (at most
1,000) and calls callbacks only between chunks: the callback resamples at the first chunk end
``period`` or more iterations after the last resample. To resample every ``period`` L-BFGS
iterations, set ``dde.optimizers.config.LBFGS_options["iter_per_step"] = period`` before
``model.compile("L-BFGS")``; the L-BFGS curvature history then carries over the resample.

Residuals come from the data's own PDE function on the model's network (hard-constraint output
transform included), in chunks of ``chunk_size`` points whose graphs are dropped one by one, and
are counted in :attr:`Resampler.costs`. DeepXDE's PyTorch backend only; importing this module
sets ``DDE_BACKEND=pytorch`` unless the environment already names a backend.
"""

from __future__ import annotations

import os

os.environ.setdefault("DDE_BACKEND", "pytorch")

try:
    import deepxde as dde
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "glfpinn.integrations.deepxde needs DeepXDE: pip install 'glfpinn[integrations]'"
    ) from err

import numpy as np
import torch
from torch import Tensor

from glfpinn._checks import check_bool, check_int
from glfpinn.domains import Box, Domain, Region
from glfpinn.integrations._common import resample_points, residual_norm, resolve_sampler
from glfpinn.samplers.base import Sampler, SamplerState
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD as COVERAGE_THRESHOLD
from glfpinn.samplers.coverage import CollapseMonitor
from glfpinn.training.costs import Costs
from glfpinn.training.scorer import DEFAULT_CHUNK, Scorer

__all__ = ["Resampler", "domain_of"]


def _box_bounds(geom: object) -> tuple[list[float], list[float]] | None:
    """Lower and upper corners if ``geom`` is an axis-aligned box, else None."""
    geometry = dde.geometry
    if isinstance(geom, geometry.Hypercube):  # Rectangle and Cuboid too
        return [float(v) for v in geom.xmin], [float(v) for v in geom.xmax]
    if isinstance(geom, geometry.Interval):  # TimeDomain too
        return [float(geom.l)], [float(geom.r)]
    if isinstance(geom, geometry.GeometryXTime):
        space = _box_bounds(geom.geometry)
        if space is None:
            return None
        time_domain = geom.timedomain
        return space[0] + [float(time_domain.t0)], space[1] + [float(time_domain.t1)]
    return None


def domain_of(geom: object) -> Domain:
    """A DeepXDE geometry as a glfpinn domain.

    A box (Interval, Rectangle, Cuboid, Hypercube, or any of them times a TimeDomain) becomes a
    :class:`glfpinn.Box`, with exact reflection. Any other geometry becomes a
    :class:`~glfpinn.domains.Region` on its bounding box and ``inside`` test:
    points that leave it are folded into the box and, if still outside, redrawn inside.
    """
    box = _box_bounds(geom)
    if box is not None:
        return Box(*box)
    if isinstance(geom, dde.geometry.GeometryXTime):
        space, time_domain = geom.geometry, geom.timedomain
        lower = [*np.ravel(space.bbox[0]), time_domain.t0]
        upper = [*np.ravel(space.bbox[1]), time_domain.t1]

        def inside(x: np.ndarray) -> np.ndarray:
            return space.inside(x[:, :-1]) & time_domain.inside(x[:, -1:])

    elif isinstance(geom, dde.geometry.Geometry):
        lower, upper, inside = np.ravel(geom.bbox[0]), np.ravel(geom.bbox[1]), geom.inside
    else:
        raise ValueError(
            f"geometry {type(geom).__name__} is not a DeepXDE Geometry or GeometryXTime"
        )
    return Region([float(v) for v in lower], [float(v) for v in upper], inside, type(geom).__name__)


class _WeightedPDE:
    """The data's PDE with the PDE rows of training residuals scaled by sqrt(w): DeepXDE's
    mean-squared loss then trains on mean(w r^2). Test losses and predictions pass through."""

    def __init__(self, pde, resampler: Resampler) -> None:
        self.pde = pde
        self.resampler = resampler

    def __call__(self, x, y):
        f = self.pde(x, y)
        root = self.resampler._root_weights
        model = self.resampler.model
        if root is None or not model.net.training:
            return f
        if len(x) != len(model.data.train_x):
            return f  # not the training batch (e.g. a user's own call)
        scale = root.to(x.dtype)
        n = scale.shape[0]

        def weigh(fi: Tensor) -> Tensor:
            return torch.cat([fi[:-n], fi[-n:] * scale])

        return [weigh(fi) for fi in f] if isinstance(f, (list, tuple)) else weigh(f)


class Resampler(dde.callbacks.Callback):
    """Resample a DeepXDE model's PDE points every ``period`` iterations with a glfpinn sampler.

    Args:
        sampler: a glfpinn :class:`~glfpinn.samplers.Sampler` or a registry name ("glf",
            "rad", "r3", "pacmann", ...; ``glfpinn list`` shows them all).
        period: iterations between resamples (the model's steps: under Adam one per epoch, as
            ``PDEPointResampler`` counts; under L-BFGS every iteration, see the module).
        seed: seeds the callback's own ``torch.Generator``: every draw of the sampler comes
            from it, none from global random state.
        chunk_size: points per residual evaluation (bounds the memory of scoring).
        use_weights: train on the sampler's loss weights when it returns some (e.g.
            ``GLF(importance_weights=True)``), exact for DeepXDE's default "MSE" loss.
        coverage_threshold: a resample whose points' coverage falls below this warns once
            (:class:`~glfpinn.samplers.coverage.CollapseWarning`); every resample's coverage
            is in :attr:`history`.

    After training, :attr:`costs` holds what resampling cost: ``residual_evals`` (points
    scored), ``scoring_time_s``, ``sampling_time_s`` and ``resamples``. A PDE with several
    equations is ranked by the Euclidean norm of its residual vector.
    """

    def __init__(
        self,
        sampler: Sampler | str = "glf",
        period: int = 100,
        *,
        seed: int = 0,
        chunk_size: int = DEFAULT_CHUNK,
        use_weights: bool = True,
        coverage_threshold: float = COVERAGE_THRESHOLD,
    ) -> None:
        super().__init__()
        self.sampler = resolve_sampler(sampler)
        self.period = check_int("period", period, minimum=1)
        self.seed = check_int("seed", seed)
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.use_weights = check_bool("use_weights", use_weights)
        self.monitor = CollapseMonitor(coverage_threshold)
        #: each resample's ``info`` (its ``coverage`` and the sampler's own figures)
        self.history: list[dict] = []
        self.costs = Costs()
        self.weights: Tensor | None = None
        self._root_weights: Tensor | None = None
        self.generator: torch.Generator | None = None
        self.state: SamplerState | None = None
        #: the model's step at the last resample (or when the callback got its model)
        self._last_step = 0

    def __repr__(self) -> str:
        return (
            f"Resampler(sampler={self.sampler!r}, period={self.period}, seed={self.seed}, "
            f"chunk_size={self.chunk_size}, use_weights={self.use_weights})"
        )

    @property
    def residual_evals(self) -> int:
        """Residual evaluations spent by resampling so far."""
        return self.costs.residual_evals

    def init(self) -> None:
        """Check the model and build the domain, scorer and generator (DeepXDE calls this
        whenever the callback gets a new model)."""
        backend = dde.backend.backend_name
        if backend != "pytorch":
            raise ValueError(
                f"glfpinn's DeepXDE Resampler runs on the pytorch backend only; DeepXDE uses "
                f"{backend!r} (set DDE_BACKEND=pytorch before importing deepxde)"
            )
        data = self.model.data
        if not isinstance(data, dde.data.PDE) or data.pde is None:
            raise ValueError(
                f"the model's data is {type(data).__name__}; the Resampler needs a "
                "dde.data.PDE or TimePDE with a pde function"
            )
        pde = data.pde.pde if isinstance(data.pde, _WeightedPDE) else data.pde
        if dde.utils.get_num_args(pde) != 2:
            raise ValueError(
                "the Resampler supports pde(x, y) only; PDEs with auxiliary variables are not"
            )
        self._pde = pde
        self.domain = domain_of(data.geom)
        self.scorer = Scorer(self._residual, chunk_size=self.chunk_size, costs=self.costs)
        device = next(self.model.net.parameters()).device
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        self.state = self.sampler.init_state(self._points())
        self._last_step = int(self.model.train_state.step)

    def on_train_begin(self) -> None:
        if self.use_weights and not isinstance(self.model.data.pde, _WeightedPDE):
            self.model.data.pde = _WeightedPDE(self._pde, self)

    def on_train_end(self) -> None:
        if isinstance(self.model.data.pde, _WeightedPDE):
            self.model.data.pde = self._pde

    def on_epoch_end(self) -> None:
        step = int(self.model.train_state.step)
        if step - self._last_step >= self.period:
            self._last_step = step
            self.resample()

    def resample(self) -> None:
        """Replace the PDE points now (what every ``period``-th iteration does)."""
        out = resample_points(
            self.sampler,
            self.state,
            self._points(),
            self.domain,
            int(self.model.train_state.step),
            self.generator,
            self.scorer,
            self.monitor,
        )
        self.history.append({"step": int(self.model.train_state.step), **out.info})
        self.state = out.state
        self.weights = out.weights.detach() if out.weights is not None else None
        # the loss multiplies each PDE row by sqrt(w) (w r^2 in the MSE): once per resample
        self._root_weights = None if self.weights is None else self.weights.sqrt().view(-1, 1)
        data = self.model.data
        # What PDEPointResampler's resample_train_points does, with our points in place of
        # fresh ones: the cached BC points stay and train_x is rebuilt from both.
        data.train_x_all = out.points.detach().cpu().numpy().astype(data.train_x_all.dtype)
        data.train_x, data.train_y, data.train_aux_vars = None, None, None
        data.train_next_batch()

    def _points(self) -> Tensor:
        x = self.model.data.train_x_all
        return torch.as_tensor(x, device=self.generator.device)

    def _residual(self, x: Tensor) -> Tensor:
        """The data's PDE residual at ``x`` on the network in eval mode; one value per row."""
        return residual_norm(self.model.net, self._pde_at, x)

    def _pde_at(self, x: Tensor) -> Tensor:
        net = self.model.net
        try:
            y = net(x)
            f = self._pde(x, (y, net) if dde.config.autodiff == "forward" else y)
        finally:
            dde.grad.clear()  # DeepXDE caches derivatives by tensor: drop this chunk's
        if isinstance(f, (list, tuple)):
            f = torch.cat([fi.reshape(len(x), -1) for fi in f], dim=1)
        return f
