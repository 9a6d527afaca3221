"""Dense quasi-Newton optimizers: BFGS, self-scaled BFGS and self-scaled Broyden, one iteration
per trainer step with a strong-Wolfe line search.

PINN studies that reach errors far below Adam + L-BFGS train small networks with these
(Urban, Stefanou, Pons 2024, arXiv 2405.04230; Kiyani et al. 2025, arXiv 2501.16371). They keep
the whole inverse Hessian approximation ``H`` (n x n for n parameters), so a stage states its
memory and refuses a model above ``max_params``.

The update of the self-scaled Broyden family, in inverse form (Al-Baali & Khalfan 2005, as
written in Urban et al. 2024, section 2.3, and in Bioli & Mendibe, arXiv 2603.10599): with the
step ``s = x+ - x``, ``y = g+ - g``, ``rho = 1 / y.s``, ``h = y.Hy / y.s``,
``b = -t rho s.g`` (t the step length) and ``a = b h - 1``::

    H+ = (H - Hy Hy^T / yHy + phi yHy v v^T) / tau + rho s s^T,
    v = rho s - Hy / yHy,   phi = (1 - theta) / (1 + a theta)

- **BFGS**: theta = 0, tau = 1 (phi = 1, the textbook update, Nocedal & Wright eq. 6.17);
- **SSBFGS**: theta = 0; tau = h at the first update, then min(1, 1/b);
- **SSBroyden**: theta = max(theta-, min(theta+, (1 - b)/b)) with c = sqrt|a/(1+a)|,
  rho- = min(1, h(1 - c)), theta- = (rho- - 1)/a, theta+ = 1/rho-; tau = h/(1 + a theta) at
  the first update, then with rho_k = min(1, 1/b), sigma = 1 + theta a and
  sigma_n = |sigma|^(1/(1-n)): min(rho_k sigma_n, sigma) if theta <= 0, else
  rho_k min(sigma_n, 1/theta).

An update whose scalars are not finite, or with ``y.s`` at rounding level (no curvature
information), is skipped and ``H`` kept. The rank-two update is applied as one
``H.addmm_(U, C U^T, beta=1/tau)`` with ``U = [s, Hy]``, so an iteration reads ``H`` twice
(``H y`` and the update); the next direction ``H+ g+`` follows from the same low-rank terms.

The line search is pytorch-minimize's strong-Wolfe search (``torchmin.line_search``), which is
torch's L-BFGS search behind a public function.

**At a resample** the stored gradient belongs to the old points, so the next step evaluates the
loss afresh; whether ``H`` is kept is the stage's choice (:meth:`QuasiNewton.reset_curvature`,
``Stage(..., curvature="reset")``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["BFGS", "SSBFGS", "SSBroyden", "QuasiNewton", "DEFAULT_MAX_PARAMS", "dense_bytes"]

#: Parameters above which a dense stage refuses (its ``H`` is n^2 numbers: 20,000 parameters
#: are 1.6 GB in float32, 3.2 GB in float64); raise it with the ``max_params`` option.
DEFAULT_MAX_PARAMS = 20_000


def dense_bytes(n_params: int, dtype: torch.dtype) -> int:
    """Bytes of a dense n x n inverse Hessian in ``dtype``."""
    return n_params * n_params * torch.empty((), dtype=dtype).element_size()


class QuasiNewton(Optimizer):
    """One quasi-Newton iteration per ``step(closure)``; the base of :class:`BFGS`,
    :class:`SSBFGS` and :class:`SSBroyden` (``update`` names which).

    Args:
        params: the parameters (one group; all on one device, of one dtype).
        lr: the first trial step length of each line search (1 is the Newton step); the very
            first iteration, with ``H = I``, tries ``lr * min(1, 1/|g|_1)`` as torch's L-BFGS does.
        max_eval: loss evaluations per line search.
        c1, c2: the strong-Wolfe constants (sufficient decrease, curvature).
        tolerance_change: the line search stops when the bracket is this narrow.
        max_params: refuse a model with more parameters (the memory of ``H``).
    """

    update: str = "bfgs"

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1.0,
        *,
        max_eval: int = 25,
        c1: float = 1e-4,
        c2: float = 0.9,
        tolerance_change: float = 1e-12,
        max_params: int = DEFAULT_MAX_PARAMS,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr={lr!r} must be > 0")
        if not 0 < c1 < c2 < 1:
            raise ValueError(f"c1={c1!r}, c2={c2!r}: need 0 < c1 < c2 < 1")
        if int(max_eval) < 1:
            raise ValueError(f"max_eval={max_eval!r} must be >= 1")
        defaults = dict(
            lr=lr,
            max_eval=int(max_eval),
            c1=c1,
            c2=c2,
            tolerance_change=tolerance_change,
            max_params=int(max_params),
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"{type(self).__name__} takes one parameter group")
        n = self.n_params
        if n > max_params:
            dtype = self._params[0].dtype
            raise ValueError(
                f"{type(self).__name__}: the model has {n:,} parameters, above "
                f"max_params={max_params:,} (a dense inverse Hessian of {n:,}^2 "
                f"{str(dtype).removeprefix('torch.')} numbers = "
                f"{dense_bytes(n, dtype) / 1e6:,.1f} MB); raise max_params or use lbfgs"
            )

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self._params)

    def memory_bytes(self) -> int:
        """Bytes of the inverse Hessian at the parameters' current dtype."""
        return dense_bytes(self.n_params, self._params[0].dtype)

    # ---------------------------------------------------------------- what a resample calls
    def forget_gradient(self) -> None:
        """The loss changed (new points): the next step evaluates it afresh, and the first
        pair (s, y) it would have formed across the change is not used."""
        self._slot().pop("g", None)

    def reset_curvature(self) -> None:
        """Forget ``H`` as well: the next iteration starts from the identity."""
        self.state.pop(self._params[0], None)

    # ------------------------------------------------------------------------- the step
    def _slot(self) -> dict[str, Any]:
        return self.state[self._params[0]]

    def _flat_grad(self) -> Tensor:
        return torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in self._params
            ]
        )

    def _flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _set_params(self, flat: Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for p in self._params:
                n = p.numel()
                p.copy_(flat[offset : offset + n].view_as(p))
                offset += n

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """One iteration: direction ``-H g``, a strong-Wolfe line search along it, the update
        of ``H``. ``closure`` zeroes the gradients, computes the loss and backpropagates.
        Returns the loss at the accepted point."""
        from torchmin.line_search import strong_wolfe

        group = self.param_groups[0]
        slot = self._slot()
        evaluate = torch.enable_grad()(closure)
        x = self._flat_params()
        first = "H" not in slot
        if first:
            slot["H"] = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
            slot["updates"] = 0
        # the gradient of the last step, unless the points changed (forget_gradient) or another
        # stage moved the parameters since
        if "g" not in slot or not torch.equal(slot["x"], x):
            slot["f"] = float(evaluate())
            slot["g"] = self._flat_grad()
            slot["Hg"] = slot["H"] @ slot["g"]
        g: Tensor = slot["g"]
        if not bool(g.abs().max() > 0):  # a stationary point: nothing to do
            return torch.as_tensor(slot["f"], dtype=g.dtype, device=g.device)
        d = -slot["Hg"]
        gtd = float(g.dot(d))
        if not gtd < 0:  # H lost definiteness to rounding: restart from the gradient
            slot["H"] = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
            slot["Hg"], slot["updates"] = g.clone(), 0
            d, gtd, first = -g, -float(g.dot(g)), True
        t = group["lr"] * (min(1.0, 1.0 / float(g.abs().sum())) if first else 1.0)

        def along(x0: Tensor, step: float, direction: Tensor) -> tuple[float, Tensor]:
            self._set_params(x0 + step * direction)
            return float(evaluate()), self._flat_grad()

        f_new, g_new, t, _ = strong_wolfe(
            along,
            x,
            t,
            d,
            slot["f"],
            g,
            gtd,
            c1=group["c1"],
            c2=group["c2"],
            tolerance_change=group["tolerance_change"],
            max_ls=group["max_eval"],
        )
        s = t * d
        slot["x"] = x + s
        self._set_params(slot["x"])
        self._update(slot, s, g_new - g, g_new, t, g)
        slot["f"], slot["g"] = float(f_new), g_new
        return torch.as_tensor(float(f_new), dtype=x.dtype, device=x.device)

    def _update(
        self, slot: dict[str, Any], s: Tensor, y: Tensor, g_new: Tensor, t: float, g: Tensor
    ) -> None:
        """Apply the family's rank-two update to ``H`` and store ``H+ g+`` (the next
        direction's); skip it (keeping ``H``) when its scalars are not finite."""
        H: Tensor = slot["H"]
        Hg_new = H @ g_new
        Hy = Hg_new - slot["Hg"]  # H y = H g+ - H g, one matrix-vector product per iteration
        ys, yHy = float(y.dot(s)), float(y.dot(Hy))
        eps = torch.finfo(s.dtype).eps
        if ys > eps * float(y.norm()) * float(s.norm()) and yHy > 0:
            rho = 1.0 / ys
            h = yHy * rho
            b = -t * rho * float(s.dot(g))
            a = b * h - 1.0
            try:
                theta, tau = self._scalars(a, b, h, slot["updates"] == 0, s.numel())
                phi = (1.0 - theta) / (1.0 + a * theta)
                coeffs = (
                    rho + phi * yHy * rho * rho / tau,  # s s^T
                    -phi * rho / tau,  # s Hy^T + Hy s^T
                    (phi - 1.0) / (tau * yHy),  # Hy Hy^T
                )
            except (ZeroDivisionError, OverflowError):
                tau, coeffs = math.nan, (math.nan,)
            if tau > 0 and all(math.isfinite(c) for c in coeffs):
                c_ss, c_sh, c_hh = coeffs
                U = torch.stack([s, Hy], dim=1)  # n x 2
                C = torch.tensor([[c_ss, c_sh], [c_sh, c_hh]], dtype=s.dtype, device=s.device)
                W = C @ U.T  # 2 x n
                H.addmm_(U, W, beta=1.0 / tau)
                slot["Hg"] = Hg_new / tau + U @ (W @ g_new)
                slot["updates"] += 1
                return
        slot["Hg"] = Hg_new

    def _scalars(self, a: float, b: float, h: float, first: bool, n: int) -> tuple[float, float]:
        """(theta, tau) of the family member: BFGS's (0, 1)."""
        return 0.0, 1.0


class BFGS(QuasiNewton):
    """Dense BFGS with a strong-Wolfe line search (Nocedal & Wright, eq. 6.17)."""

    update = "bfgs"


class SSBFGS(QuasiNewton):
    """Self-scaled BFGS (Oren & Luenberger's scaling as in Al-Baali & Khalfan 2005; Urban et al.
    2024): the BFGS update of ``H / tau``, tau = h at the first update, then min(1, 1/b)."""

    update = "ssbfgs"

    def _scalars(self, a: float, b: float, h: float, first: bool, n: int) -> tuple[float, float]:
        return 0.0, (h if first else min(1.0, 1.0 / b))


class SSBroyden(QuasiNewton):
    """Self-scaled Broyden (Al-Baali & Khalfan 2005; Urban et al. 2024; Kiyani et al. 2025):
    theta and tau chosen per iteration from a, b, h (formulas in the module docstring)."""

    update = "ssbroyden"

    def _scalars(self, a: float, b: float, h: float, first: bool, n: int) -> tuple[float, float]:
        c = math.sqrt(abs(a / (1.0 + a))) if a != -1.0 else math.inf
        rho_minus = min(1.0, h * (1.0 - c))
        theta_minus = (rho_minus - 1.0) / a if a != 0 else -math.inf
        theta_plus = 1.0 / rho_minus if rho_minus != 0 else math.inf
        theta = max(theta_minus, min(theta_plus, (1.0 - b) / b))
        sigma = 1.0 + theta * a
        if first:
            return theta, h / sigma
        rho_k = min(1.0, 1.0 / b)
        sigma_n = abs(sigma) ** (1.0 / (1.0 - n))
        if theta <= 0:
            return theta, min(rho_k * sigma_n, sigma)
        return theta, rho_k * min(sigma_n, 1.0 / theta)
