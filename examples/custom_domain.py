"""A geometry of one's own: a disk, checked by ``glfpinn.testing.check_domain``, then trained on.

A :class:`glfpinn.Domain` gives ``bounds``, ``contains``, ``sample``, ``sample_boundary`` and
``reflect`` (the contract is in docs/problems.md, "Custom domains"); every draw comes from the
generator it is handed. Here -Laplace(u) = 4 on the unit disk with u = 0 on its circle (soft),
whose solution is u = 1 - |x|^2.

    python examples/custom_domain.py             # under a minute on a laptop CPU
"""

from __future__ import annotations

import math

import numpy as np
import torch

from glfpinn import Domain, Problem, RobustGLF, ops
from glfpinn.testing import check_domain
from glfpinn.training import make_trainer


class Disk(Domain):
    """The closed disk of ``radius`` around ``centre``."""

    def __init__(self, centre: tuple[float, float] = (0.0, 0.0), radius: float = 1.0) -> None:
        self.centre = torch.tensor(centre, dtype=torch.float64)
        self.radius = float(radius)
        self.dim = 2

    def __repr__(self) -> str:
        return f"Disk(centre={self.centre.tolist()}, radius={self.radius})"

    @property
    def bounds(self):
        return self.centre - self.radius, self.centre + self.radius

    @property
    def volume(self) -> float:
        return math.pi * self.radius**2

    def contains(self, x):
        centre = self.centre.to(x.device, x.dtype)
        return torch.linalg.vector_norm(x - centre, dim=1) <= self.radius

    def _polar(self, r, angle):
        centre = self.centre.to(r.device, r.dtype)
        points = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1) + centre
        # cos and sin round: keep every point in the closed disk
        return self.reflect(points)

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        if method != "uniform":
            raise ValueError(f"method={method!r} is not allowed; the disk samples 'uniform' only")
        u = torch.rand(n, 2, generator=generator, device=generator.device, dtype=dtype)
        # sqrt: uniform in area, not crowded at the centre
        return self._polar(self.radius * u[:, 0].sqrt(), 2 * math.pi * u[:, 1])

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        angle = (
            2 * math.pi * torch.rand(n, generator=generator, device=generator.device, dtype=dtype)
        )
        return self._polar(torch.full_like(angle, self.radius), angle)

    def reflect(self, x, generator=None):
        """A point at distance r > R from the centre goes to distance 2R - r on the same ray
        (folded on for r > 2R); points inside stay where they are."""
        centre = self.centre.to(x.device, x.dtype)
        d = x - centre
        r = torch.linalg.vector_norm(d, dim=1, keepdim=True)
        y = torch.remainder(r, 2 * self.radius)  # a triangle wave in r, as a box folds x
        folded = self.radius - (y - self.radius).abs()
        # one ulp under R: the rounding of centre + direction * R stays inside
        folded = folded * (1 - torch.finfo(x.dtype).eps)
        outside = r > self.radius
        return torch.where(outside, centre + d / r.clamp_min(1e-30) * folded, x)


class DiskPoisson(Problem):
    name = "disk-poisson"
    defaults = {"n_points": 1000, "resample_every": 250, "hidden": (32, 32)}

    def __init__(self) -> None:
        self.dim = 2
        self.domain = Disk()

    def residual(self, model, x):
        _, lap = ops.laplacian(model, x)
        return -lap - 4.0

    def condition_points(self, n, generator, dtype):
        return {"boundary": self.domain.sample_boundary(n, generator, dtype=dtype)}

    def condition_misfits(self, model, points):
        return {"boundary": (model(points["boundary"]) ** 2).mean()}

    def condition_loss(self, model, points):
        return self.condition_misfits(model, points)["boundary"]

    def solution(self, x):
        x = np.asarray(x, dtype=np.float64)
        return 1.0 - (x**2).sum(axis=1)

    def test_points(self):
        points = self.domain.sample(4000, torch.Generator().manual_seed(123), dtype=torch.float64)
        return points.numpy()


def main(tiny: bool = False) -> dict:
    check_domain(Disk())  # the contract, before any training
    check_domain(Disk(centre=(2.0, -1.0), radius=0.5))
    trainer = make_trainer(
        DiskPoisson(),
        RobustGLF(),
        steps=200 if tiny else 3000,
        lbfgs_steps=20 if tiny else 300,
        lr=1e-2,
        eval_every=50 if tiny else 500,
        n_points=300 if tiny else None,
        seed=0,
    )
    result = trainer.fit()
    first = trainer.state.initial_metrics["l2_relative_error"]
    print(
        f"disk Poisson: L2 error {first:.2e} -> {result.l2_relative_error:.2e}; boundary "
        f"misfit {result.condition_misfit['boundary']:.2e}"
    )
    return {"initial_l2": first, "result": result}


if __name__ == "__main__":
    main()
