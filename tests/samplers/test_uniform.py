import torch

from glfpinn.samplers import Uniform, UniformResample
from tests.helpers import make_context


def test_fixed_uniform_never_changes_the_points():
    ctx, fn = make_context()
    assert torch.equal(Uniform().resample(ctx, {}).points, ctx.points)
    assert fn.evals == 0


def test_resample_draws_new_points_for_every_method():
    for method in ("uniform", "sobol", "halton", "lhs"):
        ctx, _ = make_context()
        new = UniformResample(method).resample(ctx, {}).points
        assert new.shape == ctx.points.shape and not torch.allclose(new, ctx.points)
