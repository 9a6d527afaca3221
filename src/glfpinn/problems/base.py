"""The problem API: a PDE, its domain, its conditions and its exact or reference solution."""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn._params import Params
from glfpinn.domains import Domain
from glfpinn.nn import MLP, Constrained
from glfpinn.problems.reference.files import ReferenceData, load_reference
from glfpinn.problems.unknowns import Unknown, UnknownParameters

__all__ = [
    "Problem",
    "Model",
    "RUN_DEFAULTS",
    "check_problem",
    "check_problem_class",
    "with_reference",
]

#: A network mapping points (n, dim) to u (n, 1) or (n,).
Model = Callable[[Tensor], Tensor]

#: What a run uses when neither it nor its problem's ``defaults`` say otherwise: the one home of
#: these defaults (the trainer, the config and the bench all ask :meth:`Problem.run_default`).
RUN_DEFAULTS: dict[str, Any] = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}


class Problem(Params, abc.ABC):
    """A PDE to train on.

    ``residual(model, x)`` is L u - f at interior points, differentiable with respect to the
    model's parameters; ``solution(x)``, optional, is the exact or reference solution (float64
    numpy, shape (n,)) on the test set ``test_points()``: a problem without one trains all the
    same, validated by its residuals. Time, where there is one, is the last coordinate. Initial
    and boundary conditions are either built into the network (``output_transform``, hard
    constraints) or penalised by ``condition_loss`` on points from ``condition_points`` (soft
    constraints).

    A problem's constructor arguments are stored under attributes of the same names, so that
    ``get_params()`` reads them back and a run records how to build it again.
    """

    name: ClassVar[str]
    #: Defaults a run uses unless told otherwise (keys of ``RUN_DEFAULTS``).
    defaults: ClassVar[dict[str, Any]] = {}

    dim: int
    domain: Domain

    #: Whether the conditions are built into the network through ``output_transform``.
    hard_constrained: ClassVar[bool] = False

    #: An inverse problem's unknown coefficients, name -> initial guess (a number, or an
    #: :class:`~glfpinn.problems.unknowns.Unknown` with a transform: ``Unknown(0.05,
    #: "positive")``): trainable scalars that ``residual`` reads with :meth:`unknown` and that
    #: train with the network, through the same optimizer stages; set it on the class or, to
    #: make the guesses parameters, in ``__init__``.
    unknowns: dict[str, float | Unknown] = {}

    #: The network's outputs, by name, in column order (a system of PDEs has several: Navier-
    #: Stokes' ``("u", "v", "p")``); one, ``u``, by default. The network maps (n, dim) to
    #: (n, len(outputs)); ``solution`` and reference files give one column per output.
    outputs: ClassVar[tuple[str, ...]] = ("u",)
    #: The equations, by name: with several, ``residual`` returns one column per equation,
    #: (n, len(equations)); with one, (n,) as ever.
    equations: ClassVar[tuple[str, ...]] = ("residual",)

    #: A reference solution read from a file (:func:`with_reference`): when set, a run
    #: measures its L2 error on the file's points and values instead of ``test_set()``.
    reference_file: ReferenceData | None = None

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        """Hard constraint u = transform(x, NN(x)), for problems with ``hard_constrained``."""
        raise NotImplementedError(f"{self.name} imposes its conditions softly")

    def build_model(
        self,
        hidden: Sequence[int] | None = None,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
    ) -> nn.Module:
        """The default network for this problem (an :class:`MLP` of widths ``hidden``, by
        default :meth:`run_default` ``("hidden")``), wrapped by :meth:`wrap_model`."""
        net = MLP(
            self.dim,
            len(self.outputs),
            tuple(self.run_default("hidden") if hidden is None else hidden),
            activation,
            generator=generator,
            fourier_features=fourier_features,
            fourier_scale=fourier_scale,
        )
        return self.wrap_model(net)

    def wrap_model(self, net: nn.Module) -> nn.Module:
        """``net`` in this problem's hard constraint, if it has one and ``net`` is not a
        :class:`Constrained` already; otherwise ``net`` itself."""
        if self.hard_constrained and not isinstance(net, Constrained):
            return Constrained(net, self.output_transform)
        return net

    @abc.abstractmethod
    def residual(self, model: Model, x: Tensor) -> Tensor:
        """The PDE residual at ``x`` (n, dim), shape (n,); (n, len(equations)) for a system."""

    def output_index(self, name: str) -> int:
        """The column of output ``name``; an unknown name is a one-line ValueError."""
        outputs = tuple(self.outputs)
        if name not in outputs:
            raise ValueError(
                f"problem {self.name!r} has no output {name!r}; outputs: {', '.join(outputs)}"
            )
        return outputs.index(name)

    def output(self, u: Tensor, name: str) -> Tensor:
        """Output ``name``'s column of the network's values ``u`` (n, len(outputs)), shape
        (n,): how a system's residual and per-output conditions pick an output."""
        return u[:, self.output_index(name)]

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        """Points for the soft condition terms (empty under hard constraints)."""
        return {}

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor | None:
        """Mean squared violation of the soft conditions, or None under hard constraints."""
        return None

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each soft condition's mean squared violation at ``points``, by name (``boundary``,
        ``initial``, ...), unweighted: what a run reports as ``condition_misfit`` on held-out
        condition points. By default the whole ``condition_loss`` under ``"conditions"``
        (nothing under hard constraints); override it to report each condition apart."""
        loss = self.condition_loss(model, points)
        return {} if loss is None else {"conditions": loss}

    def unknown_parameters(self) -> UnknownParameters:
        """The trainable coefficients, raw (before their transforms), created from
        ``unknowns`` on first use (float32; the trainer moves them to the run's dtype and
        device, in place)."""
        if "_unknown_parameters" not in self.__dict__:
            self._unknown_parameters = UnknownParameters(self.unknowns)
        return self._unknown_parameters

    def unknown(self, name: str) -> Tensor:
        """The current value of the unknown coefficient ``name``: a 0-d tensor, differentiable
        with respect to its raw trainable parameter (the parameter itself without a
        transform)."""
        params = self.unknown_parameters()
        if name not in params:
            known = ", ".join(params) or "none"
            raise ValueError(f"problem {self.name!r} has no unknown {name!r}; unknowns: {known}")
        return params.value(name)

    def observations(
        self,
    ) -> tuple[np.ndarray, np.ndarray] | Mapping[str, tuple[np.ndarray, np.ndarray]] | None:
        """Measurements for an inverse problem (noisy or not), fitted by the loss's data term;
        None (the default) for none. Points ``(m, dim)`` and values ``(m,)`` for one output;
        for a system, values ``(m, k)`` (every output at the same points) or a mapping
        ``{output name: (points, values (m_o,))}`` (each measured output at its own points).
        The data term sums each output's mean squared misfit
        (:mod:`glfpinn.training.observations`)."""
        return None

    def run_default(self, key: str) -> Any:
        """This problem's default for ``key`` (``n_points``, ``resample_every``, ``hidden``)."""
        return self.defaults.get(key, RUN_DEFAULTS[key])

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        """Exact or reference solution at ``x`` (n, dim), float64, shape (n,); optional."""
        raise NotImplementedError(f"{self.name} has no reference solution")

    def test_points(self) -> np.ndarray:
        """The fixed test set (float64, (n, dim)) on which the L2 relative error is measured."""
        raise NotImplementedError(f"{self.name} has no reference solution")

    @property
    def has_reference(self) -> bool:
        """Whether the problem has a reference to measure a run against: a reference file
        (:func:`with_reference`), or both ``solution`` and ``test_points``."""
        return self.reference_file is not None or self._has_own_reference

    @property
    def has_solution(self) -> bool:
        """Whether ``solution(x)`` answers at any points (a formula or a solver), not only at
        a reference file's: what an error map on a grid needs."""
        return type(self).solution is not Problem.solution

    @property
    def _has_own_reference(self) -> bool:
        cls = type(self)
        if cls.test_set is not Problem.test_set and cls.test_points is not Problem.test_points:
            return True  # a reference known at fixed points only (a file of its own)
        return cls.solution is not Problem.solution and cls.test_points is not Problem.test_points

    def reference_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The points ``(n, dim)`` and values ``(n,)`` a run's L2 error is measured on: the
        reference file's where one is attached (it wins over the problem's own), else
        :meth:`test_set`."""
        if self.reference_file is not None:
            values = self.reference_file.values
            return self.reference_file.points, values[:, 0] if len(self.outputs) == 1 else values
        return self.test_set()

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Test points and the solution there (computed once per problem instance). A problem
        whose reference is known at fixed points only (a data file it ships, PINNacle's cases)
        overrides this and ``test_points`` and leaves ``solution`` out: it has a reference
        (``has_reference``) but no ``solution`` to evaluate elsewhere (``has_solution``)."""
        if not self._has_own_reference:
            raise ValueError(f"problem {self.name!r} has no reference solution to test against")
        if not hasattr(self, "_test_set"):
            x = self.test_points()
            u = np.asarray(self.solution(x), dtype=np.float64)
            k = len(self.outputs)
            self._test_set = (x, u.reshape(-1) if k == 1 else u.reshape(len(x), k))
        return self._test_set

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


def with_reference(
    problem: Problem,
    reference: ReferenceData | str | os.PathLike,
    *,
    columns: Sequence[int] | None = None,
    time_dependent: bool | None = None,
) -> Problem:
    """``problem`` measured against ``reference``: a file's path (read by
    :func:`~glfpinn.problems.reference.files.load_reference` with ``problem.dim`` and its
    ``len(problem.outputs)`` outputs, ``columns`` and ``time_dependent`` passed on) or
    :class:`ReferenceData` read already. Any problem takes one, built-in or a user's, with or
    without a reference of its own (the file's then wins for evaluation). Returns ``problem``
    itself, changed in place.

    A reference whose points are not ``(n, problem.dim)`` or whose values are not one column
    per output is a one-line ValueError naming both shapes.
    """
    if not isinstance(problem, Problem):
        raise ValueError(
            f"with_reference takes a glfpinn Problem, got {type(problem).__name__}; derive "
            "your problem from glfpinn.problems.Problem"
        )
    name = getattr(problem, "name", type(problem).__name__)
    k = len(problem.outputs)
    if not isinstance(reference, ReferenceData):
        try:
            reference = load_reference(
                reference, problem.dim, k, columns=columns, time_dependent=time_dependent
            )
        except ValueError as err:
            outputs = "1 output" if k == 1 else f"{k} outputs"
            raise ValueError(f"problem {name!r} (dim {problem.dim}, {outputs}): {err}") from None
    elif columns is not None or time_dependent is not None:
        raise ValueError("columns and time_dependent apply to a path, not to ReferenceData")
    if reference.points.ndim != 2 or reference.dim != problem.dim or reference.n_outputs != k:
        raise ValueError(
            f"problem {name!r} takes points (n, {problem.dim}) and values (n, {k}); reference "
            f"{reference.source!r} holds points {reference.points.shape} and values "
            f"{reference.values.shape}"
        )
    problem.reference_file = reference
    return problem


def check_problem_class(cls: type) -> None:
    """What registration can check before any instance exists: a Problem subclass with a name."""
    if not (isinstance(cls, type) and issubclass(cls, Problem)):
        return  # a factory function: checked once it has built its problem
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"problem class {cls.__name__} has no name; set the class attribute name = '...'"
        )


def check_problem(problem: Problem, model: nn.Module | None = None, n: int = 4) -> Problem:
    """The contract every problem keeps (duck-typed: any object with these works), checked
    before any training: a ``name``, an integer
    ``dim``, a :class:`Domain` of that dimension, ``outputs`` and ``equations`` tuples of
    distinct names, and a residual of shape ``(n,)`` (``(n, n_eq)`` for several equations) on
    ``n`` points of the domain (for ``model``, or a small network). Each failure is a one-line
    ValueError."""
    check_problem_class(type(problem))
    name = getattr(problem, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"problem {type(problem).__name__} has no name; set name = '...'")
    dim = getattr(problem, "dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"problem {name!r}: dim={dim!r} must be an integer >= 1 (set self.dim)")
    domain = getattr(problem, "domain", None)
    if not isinstance(domain, Domain):
        raise ValueError(
            f"problem {name!r}: domain={domain!r} must be a glfpinn Domain (Box, LShape, ...)"
        )
    if domain.dim != dim:
        raise ValueError(f"problem {name!r}: its domain has dimension {domain.dim}, dim is {dim}")
    for kind, default in (("outputs", ("u",)), ("equations", ("residual",))):
        names = getattr(problem, kind, default)
        if (
            not isinstance(names, tuple)
            or not names
            or not all(isinstance(n_, str) and n_ for n_ in names)
            or len(set(names)) != len(names)
        ):
            raise ValueError(
                f"problem {name!r}: {kind}={names!r} must be a tuple of distinct names"
            )
    generator = torch.Generator().manual_seed(0)
    net = model if model is not None else problem.build_model((8,), generator=generator)
    like = next(iter(net.parameters()), torch.empty(0))
    x = domain.sample(n, generator, dtype=like.dtype).to(like.device)
    try:
        with torch.enable_grad():
            r = problem.residual(net, x)
    except Exception as err:  # noqa: BLE001 - any failure of the user's residual, in one line
        raise ValueError(
            f"problem {name!r}: residual(model, x) failed on {n} points of its domain "
            f"({type(err).__name__}: {err})"
        ) from None
    equations = getattr(problem, "equations", ("residual",))
    if len(equations) == 1:
        if not isinstance(r, Tensor) or tuple(r.shape) != (n,):
            shape = tuple(r.shape) if isinstance(r, Tensor) else type(r).__name__
            raise ValueError(
                f"problem {name!r}: residual(model, x) must return shape (n,) = ({n},), got {shape}"
            )
    elif not isinstance(r, Tensor) or tuple(r.shape) != (n, len(equations)):
        shape = tuple(r.shape) if isinstance(r, Tensor) else type(r).__name__
        raise ValueError(
            f"problem {name!r}: residual(model, x) must return shape (n, {len(equations)}) = "
            f"({n}, {len(equations)}), one column per equation ({', '.join(equations)}), "
            f"got {shape}"
        )
    return problem
