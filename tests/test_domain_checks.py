"""check_domain: the built-in domains pass it, and each broken domain fails the check named for
what it breaks."""

import numpy as np
import pytest
import torch

from glfpinn import problems
from glfpinn.domains import Box, LShape, Region
from glfpinn.testing import check_domain

BUILT_IN = [Box.cube(1), Box([-1.0, 0.0], [1.0, 1.0]), Box.cube(20, -1.0, 2.0), LShape()]


@pytest.mark.parametrize("domain", BUILT_IN, ids=repr)
def test_the_built_in_domains_keep_the_contract_for_every_sampling_method(domain):
    check_domain(domain, methods=("uniform", "sobol", "halton", "lhs"))


@pytest.mark.parametrize("name", problems.names())
def test_every_problems_domain_keeps_the_contract(name):
    check_domain(problems.get(name).domain, n=64)


def test_a_region_without_a_boundary_sampler_is_checked_for_the_rest():
    disk = Region([-1.0, -1.0], [1.0, 1.0], lambda x: (x**2).sum(axis=1) <= 1.0, "disk")
    check_domain(disk)


class Square(Box):
    """The unit square, with one method broken at a time by the tests below."""

    def __init__(self):
        super().__init__([0.0, 0.0], [1.0, 1.0])


class Outside(Square):
    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        return super().sample(n, generator, method=method, dtype=dtype) + 0.5


class WrongDtype(Square):
    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        return super().sample(n, generator, method=method, dtype=torch.float64)


class GlobalRNG(Square):
    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        return torch.rand(n, 2, dtype=dtype)


class NumpyRNG(Square):
    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        super().sample(n, generator, method=method, dtype=dtype)
        return torch.as_tensor(np.random.rand(n, 2), dtype=dtype)


class IgnoresSeed(Square):
    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        return super().sample(n, torch.Generator().manual_seed(0), method=method, dtype=dtype)


class InteriorBoundary(Square):
    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        return 0.25 + 0.5 * torch.rand(n, 2, generator=generator, dtype=dtype)


class NoReflection(Square):
    def reflect(self, x, generator=None):
        return x


class MovesInsidePoints(Square):
    def reflect(self, x, generator=None):
        return super().reflect(x) * 0.5


class WrongMaskShape(Square):
    def contains(self, x):
        return super().contains(x)[:, None]


class Float32Bounds(Square):
    @property
    def bounds(self):
        lo, hi = super().bounds
        return lo.float(), hi.float()


class Unbounded(Square):
    def contains(self, x):
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)


@pytest.mark.parametrize(
    ("domain", "check"),
    [
        (Outside(), "sample uniform"),
        (WrongDtype(), "sample uniform"),
        (GlobalRNG(), "global RNG"),
        (NumpyRNG(), "global RNG"),
        (IgnoresSeed(), "determinism"),
        (InteriorBoundary(), "boundary"),
        (NoReflection(), "reflect"),
        (MovesInsidePoints(), "reflect"),
        (WrongMaskShape(), "contains"),
        (Float32Bounds(), "bounds"),
        (Unbounded(), "contains"),
        (object(), "protocol"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v,
)
def test_a_broken_domain_fails_the_check_for_what_it_breaks(domain, check):
    with pytest.raises(AssertionError, match=rf"check_domain \[{check}\] failed") as err:
        check_domain(domain)
    assert "\n" not in str(err.value)
