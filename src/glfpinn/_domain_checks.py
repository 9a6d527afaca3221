"""The domain conformance suite behind :func:`glfpinn.testing.check_domain`: the contract every
:class:`~glfpinn.domains.Domain` keeps, built-in or a user's (docs/problems.md, "Custom
domains").

Each check calls the domain exactly as the trainer, the samplers and the problems do, and a
failure is an ``AssertionError`` naming the check, the domain's repr and the dtype:

- ``protocol``: a :class:`Domain` with an integer ``dim`` >= 1.
- ``bounds``: two float64 CPU tensors of shape (dim,), finite, lower < upper; a finite positive
  ``volume`` and ``diameter``.
- ``contains``: a boolean tensor of shape (n,) on the points' device, False far outside.
- ``sample``: (n, dim) in the requested dtype on the generator's device, finite, inside the
  domain (``contains``) and its bounding box; for every method in ``methods``.
- ``global RNG``: torch's, numpy's and Python's global random states are untouched.
- ``determinism``: two generators with the same seed give identical points, different seeds
  different ones.
- ``boundary`` (skipped for a domain whose ``sample_boundary`` raises NotImplementedError, as
  :class:`~glfpinn.domains.Region`'s does): (n, dim) in the dtype and on the device, finite,
  deterministic, in the closed domain, and on its boundary: from each point, some step of
  ``1e-4 * diameter`` in one of 64 random directions leaves the domain (at an L-shape's
  re-entrant corner 1/4 of the directions leave; all 64 missing has probability 1e-8).
- ``reflect``: points thrown into a box three times the bounding box come back inside, in
  shape and dtype, and points already inside are returned unchanged (to 4 ulps of the box's
  largest coordinate: a fold's arithmetic rounds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from glfpinn.domains import Domain

__all__ = ["check_domain"]

#: The step, relative to the diameter, that must leave the domain from a boundary point.
BOUNDARY_STEP = 1e-4
#: Random directions tried from each boundary point.
BOUNDARY_DIRECTIONS = 64


class _Check:
    """Assertions that name the check, the domain and the dtype."""

    def __init__(self, domain: Any, dtype: torch.dtype | None = None) -> None:
        self.domain = domain
        self.dtype = dtype

    def __call__(self, name: str, ok: bool, why: str) -> None:
        if not ok:
            where = f" in {self.dtype}" if self.dtype is not None else ""
            raise AssertionError(
                f"check_domain [{name}] failed for {_describe(self.domain)}{where}: {why}"
            )


def _describe(domain: Any) -> str:
    try:
        return repr(domain)
    except Exception as err:  # noqa: BLE001 - a broken repr must not hide the failure
        return f"<{type(domain).__name__}: repr raised {type(err).__name__}>"


def _global_rng() -> tuple[Any, ...]:
    import random

    import numpy as np

    return (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


def _same_rng(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return bool(torch.equal(a[0], b[0])) and bool((a[1] == b[1]).all()) and a[2] == b[2]


def _points(check: _Check, what: str, x: Any, n: int, dim: int, dtype, device) -> Tensor:
    check(what, isinstance(x, Tensor), f"returned {type(x).__name__}, not a tensor")
    check(what, tuple(x.shape) == (n, dim), f"shape {tuple(x.shape)}, expected ({n}, {dim})")
    check(what, x.dtype == dtype, f"dtype {x.dtype}, expected the requested {dtype}")
    check(what, x.device == device, f"on {x.device}, expected the generator's {device}")
    check(what, bool(torch.isfinite(x).all()), "NaN or Inf among the points")
    return x


def _contained(check: _Check, what: str, domain: Domain, x: Tensor) -> None:
    mask = domain.contains(x)
    outside = int((~mask).sum())
    check(what, outside == 0, f"{outside} of {x.shape[0]} points are outside (contains)")
    lo, hi = (b.to(x.device, torch.float64) for b in domain.bounds)
    x64 = x.to(torch.float64)
    slack = 1e-6 * (hi - lo)  # float32 rounding of a point on the box's face
    in_box = bool(((x64 >= lo - slack) & (x64 <= hi + slack)).all())
    check(what, in_box, "points outside the bounding box `bounds`")


def _on_boundary(check: _Check, domain: Domain, xb: Tensor, seed: int) -> None:
    """From each point, some short step in one of many random directions leaves the domain."""
    gen = torch.Generator(xb.device).manual_seed(seed)
    dirs = torch.randn(
        BOUNDARY_DIRECTIONS, domain.dim, generator=gen, device=xb.device, dtype=torch.float64
    )
    dirs = dirs / torch.linalg.vector_norm(dirs, dim=1, keepdim=True)
    step = BOUNDARY_STEP * domain.diameter
    moved = xb.to(torch.float64)[:, None, :] + step * dirs[None, :, :]  # (n, K, dim)
    inside = domain.contains(moved.reshape(-1, domain.dim).to(xb.dtype))
    leaves = (~inside.reshape(xb.shape[0], BOUNDARY_DIRECTIONS)).any(dim=1)
    interior = int((~leaves).sum())
    if interior:
        check(
            "boundary",
            False,
            f"{interior} of {xb.shape[0]} boundary points lie inside: no step of {step:.2g} in "
            f"{BOUNDARY_DIRECTIONS} directions leaves the domain (e.g. {xb[~leaves][0].tolist()})",
        )


def _check_shape(domain: Domain) -> None:
    check = _Check(domain)
    check(
        "protocol",
        isinstance(domain, Domain),
        "not a glfpinn.domains.Domain (subclass it: contains, sample, sample_boundary, reflect, "
        "bounds)",
    )
    dim = getattr(domain, "dim", None)
    ok = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1
    check("protocol", ok, f"dim={dim!r} must be an integer >= 1")
    bounds = domain.bounds
    check("bounds", isinstance(bounds, tuple) and len(bounds) == 2, "must be (lower, upper)")
    for corner in bounds:
        ok = isinstance(corner, Tensor) and corner.dtype == torch.float64
        check("bounds", ok, "lower and upper must be float64 tensors")
        check("bounds", corner.device.type == "cpu", f"on {corner.device}, expected the CPU")
        check("bounds", tuple(corner.shape) == (dim,), f"shape {tuple(corner.shape)}, not ({dim},)")
        check("bounds", bool(torch.isfinite(corner).all()), "must be finite")
    check("bounds", bool((bounds[0] < bounds[1]).all()), f"lower {bounds[0]} !< upper {bounds[1]}")
    for name in ("volume", "diameter"):
        value = getattr(domain, name)
        ok = isinstance(value, float) and math.isfinite(value) and value > 0
        check("bounds", ok, f"{name}={value!r} must be a finite float > 0")


def _check_dtype(
    domain: Domain,
    dtype: torch.dtype,
    n: int,
    seed: int,
    device: torch.device,
    methods: Sequence[str],
) -> None:
    check = _Check(domain, dtype)
    dim = domain.dim

    def gen(s: int) -> torch.Generator:
        return torch.Generator(device).manual_seed(s)

    for method in methods:
        before = _global_rng()
        x = domain.sample(n, gen(seed), method=method, dtype=dtype)  # type: ignore[arg-type]
        check("global RNG", _same_rng(before, _global_rng()), f"sample({method!r}) used it")
        what = f"sample {method}"
        _contained(check, what, domain, _points(check, what, x, n, dim, dtype, device))
        again = domain.sample(n, gen(seed), method=method, dtype=dtype)  # type: ignore[arg-type]
        check("determinism", torch.equal(x, again), f"sample({method!r}): one seed, two sets")
        other = domain.sample(n, gen(seed + 1), method=method, dtype=dtype)  # type: ignore[arg-type]
        check("determinism", not torch.equal(x, other), f"sample({method!r}) ignores the seed")
    one = domain.sample(1, gen(seed), dtype=dtype)
    _points(check, "sample", one, 1, dim, dtype, device)

    mask = domain.contains(x)
    check("contains", isinstance(mask, Tensor) and mask.dtype == torch.bool, "not a bool tensor")
    check("contains", tuple(mask.shape) == (n,), f"shape {tuple(mask.shape)}, expected ({n},)")
    check("contains", mask.device == x.device, f"on {mask.device}, the points on {x.device}")
    lo, hi = (b.to(device, dtype) for b in domain.bounds)
    far = hi + (hi - lo) * (1 + torch.rand(n, dim, generator=gen(seed), device=device, dtype=dtype))
    check("contains", not bool(domain.contains(far).any()), "True beyond the bounding box")

    try:
        before = _global_rng()
        xb = domain.sample_boundary(n, gen(seed), dtype=dtype)
    except NotImplementedError:
        xb = None  # the framework's own boundary handling: nothing to check
    if xb is not None:
        check("global RNG", _same_rng(before, _global_rng()), "sample_boundary used it")
        _points(check, "boundary", xb, n, dim, dtype, device)
        _contained(check, "boundary", domain, xb)
        again = domain.sample_boundary(n, gen(seed), dtype=dtype)
        check("determinism", torch.equal(xb, again), "sample_boundary: one seed, two sets")
        _on_boundary(check, domain, xb, seed)

    # strays anywhere in a box three times the bounding box, and points already inside
    strays = (
        lo
        - (hi - lo)
        + 3 * (hi - lo) * torch.rand(n, dim, generator=gen(seed + 2), device=device, dtype=dtype)
    )
    folded = domain.reflect(strays, gen(seed + 3))
    _points(check, "reflect", folded, n, dim, dtype, device)
    _contained(check, "reflect", domain, folded)
    kept = domain.reflect(x, gen(seed + 3))
    # a fold's arithmetic may move a point by an ulp of the box's coordinates
    ulps = 4 * torch.finfo(dtype).eps * float(torch.maximum(lo.abs(), hi.abs()).max())
    moved = float((kept - x).abs().max())
    check("reflect", moved <= ulps, f"moved points that were inside (by up to {moved:.3g})")


def check_domain(
    domain: Domain,
    *,
    n: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
    methods: Sequence[str] = ("uniform",),
) -> None:
    """Run every conformance check on ``domain`` (see this module); raise AssertionError at
    the first failure.

    Args:
        n: points per draw.
        seed: the base seed of the generators (others are derived from it).
        device: where the generators, and so the points, live.
        methods: the ``sample`` methods to check (the built-in domains also take ``"sobol"``,
            ``"halton"`` and ``"lhs"``).
    """
    _check_shape(domain)
    for dtype in (torch.float32, torch.float64):
        _check_dtype(domain, dtype, n, seed, torch.device(device), methods)
