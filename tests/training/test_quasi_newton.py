"""The dense quasi-Newton optimizers on their own: the properties the formulas promise."""

import numpy as np
import pytest
import scipy.optimize
import torch

from glfpinn.training.quasi_newton import BFGS, SSBFGS, QuasiNewton, SSBroyden, dense_bytes

METHODS = [BFGS, SSBFGS, SSBroyden]


def _closure(opt, fn, x, calls=None):
    """What a trainer hands ``opt.step``: zero, evaluate ``fn(x)``, backpropagate (counted in
    ``calls[0]`` if given)."""

    def closure():
        if calls is not None:
            calls[0] += 1
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss

    return closure


def _minimise(cls, fn, x0, iterations, **options):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = cls([x], **options)
    calls = [0]
    closure = _closure(opt, fn, x, calls)
    for _ in range(iterations):
        opt.step(closure)
    return x.detach(), opt, calls[0]


def _quadratic(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    a = m @ m.T + torch.eye(n, dtype=torch.float64)  # SPD, condition number ~ 10^2..10^3
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return a, b, torch.linalg.solve(a, b)


def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


# an exact line search (c2 near 0: the strong-Wolfe search zooms to where the slope vanishes,
# which its cubic interpolation finds exactly on a quadratic)
EXACT = {"c1": 1e-12, "c2": 1e-10, "tolerance_change": 0.0}


@pytest.mark.parametrize("cls", METHODS)
def test_ends_in_n_steps_on_an_n_dimensional_quadratic(cls):
    n = 12
    a, b, solution = _quadratic(n)

    def fn(x):
        return 0.5 * x @ a @ x - b @ x

    start = torch.zeros(n, dtype=torch.float64).tolist()
    scale = float(solution.norm())
    # conjugate directions: n exact line searches reach the minimiser (Nocedal & Wright,
    # theorem 6.4) and n - 3 fall clearly short of it
    x_short, _, _ = _minimise(cls, fn, start, n - 3, **EXACT)
    x_n, _, _ = _minimise(cls, fn, start, n, **EXACT)
    assert float((x_short - solution).norm()) / scale > 1e-4
    assert float((x_n - solution).norm()) / scale < 1e-8


@pytest.mark.parametrize("cls", METHODS)
def test_converges_on_rosenbrock(cls):
    x, _, _ = _minimise(cls, _rosenbrock, [-1.2, 1.0] * 3, 300)
    assert float((x - 1).abs().max()) < 1e-7
    assert float(_rosenbrock(x)) < 1e-12


def test_bfgs_agrees_with_scipys_bfgs():
    start = [-1.2, 1.0, -0.5, 0.8]

    def fun(v):
        return float(_rosenbrock(torch.tensor(v, dtype=torch.float64)))

    def jac(v):
        x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        _rosenbrock(x).backward()
        return x.grad.numpy()

    ref = scipy.optimize.minimize(fun, start, jac=jac, method="BFGS", options={"gtol": 1e-10})
    assert ref.success
    x, _, _ = _minimise(BFGS, _rosenbrock, start, ref.nit)
    # the same minimiser, reached within scipy's own iteration count (both use a strong-Wolfe
    # search and the same update; they differ in the first step's scaling)
    np.testing.assert_allclose(x.numpy(), ref.x, atol=1e-6)


@pytest.mark.parametrize("cls", METHODS)
def test_the_inverse_hessian_satisfies_the_secant_equation(cls):
    a, b, _ = _quadratic(6, seed=1)

    def fn(x):
        return 0.5 * x @ a @ x - b @ x + 0.1 * (x**4).sum()

    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = cls([x])
    closure = _closure(opt, fn, x)

    opt.step(closure)
    x_before, g_before = x.detach().clone(), opt.state[x]["g"].clone()
    opt.step(closure)
    slot = opt.state[x]
    s, y = x.detach() - x_before, slot["g"] - g_before
    # H+ y = s: every member of the self-scaled Broyden family keeps it (the scaling 1/tau
    # multiplies only the old H's part, which the projection removes along y)
    torch.testing.assert_close(slot["H"] @ y, s, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(slot["Hg"], slot["H"] @ slot["g"], rtol=1e-8, atol=1e-12)


def test_a_model_above_max_params_is_refused_in_one_line_with_its_memory():
    params = [torch.zeros(300, requires_grad=True)]
    with pytest.raises(ValueError) as err:
        SSBroyden(params, max_params=200)
    text = str(err.value)
    assert "\n" not in text and "max_params=200" in text and "300" in text
    assert f"{dense_bytes(300, torch.float32) / 1e6:,.1f} MB" in text
    assert SSBroyden(params, max_params=300).memory_bytes() == 300 * 300 * 4


def test_forgetting_the_gradient_evaluates_afresh_and_reset_drops_the_curvature():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = BFGS([x])
    calls = [0]
    closure = _closure(opt, _rosenbrock, x, calls)

    for _ in range(5):
        opt.step(closure)
    h_kept = opt.state[x]["H"].clone()
    before = calls[0]
    opt.forget_gradient()
    opt.step(closure)
    slot = opt.state[x]
    assert calls[0] - before >= 2  # one evaluation afresh, then the line search's
    assert slot["updates"] > 5 and not torch.equal(slot["H"], torch.eye(2, dtype=x.dtype))
    assert not torch.equal(h_kept, torch.eye(2, dtype=x.dtype))

    opt.reset_curvature()
    opt.step(closure)
    assert opt.state[x]["updates"] <= 1  # started again from the identity


def test_parameters_moved_by_another_optimizer_are_noticed():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = SSBroyden([x])
    closure = _closure(opt, _rosenbrock, x)

    opt.step(closure)
    with torch.no_grad():
        x.add_(0.1)  # an Adam stage between two rounds of this one
    opt.step(closure)
    slot = opt.state[x]
    # the stored gradient is the one at the parameters the step started from
    x_now = x.detach().clone().requires_grad_(True)
    _rosenbrock(x_now).backward()
    torch.testing.assert_close(slot["g"], x_now.grad)


def test_one_parameter_group_only():
    with pytest.raises(ValueError, match="one parameter group"):
        QuasiNewton([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)]}])
