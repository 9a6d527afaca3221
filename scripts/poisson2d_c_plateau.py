"""PINNacle's Poisson2d-C trained by a plain PyTorch loop that shares nothing with glfpinn but
the reference file: is the vanilla PINN's plateau at u = 0.5 ours, or the problem's?

Laplace u = 0 on [-0.5, 0.5]^2 minus four disks of radius 0.1 at (+-0.3, +-0.3); u = 1 on the
outer edge, 0 on the circles; soft conditions, each its own mean-square term of weight 1, as
PINNacle poses it. Its own sampling (rejection in the square, uniform on the edges and circles),
a tanh MLP with Glorot-normal weights (DeepXDE's "Glorot normal", PINNacle's), Adam, nested
autograd for the Laplacian. Prints the three loss terms and the L2 error against PINNacle's
COMSOL export as it trains (docs/results.md, "PINNacle's cases").

    python scripts/poisson2d_c_plateau.py --steps 3000 --width 64 --depth 3
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

from glfpinn.problems.pinnacle import pinnacle_reference

CENTRES = torch.tensor([(0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3)])
RADIUS = 0.1


def interior(n: int, g: torch.Generator) -> torch.Tensor:
    kept = torch.empty(0, 2)
    while len(kept) < n:
        x = torch.rand(4 * n, 2, generator=g) - 0.5
        kept = torch.cat([kept, x[torch.cdist(x, CENTRES).min(dim=1).values > RADIUS]])
    return kept[:n]


def outer_edge(n: int, g: torch.Generator) -> torch.Tensor:
    s = torch.rand(n, generator=g) * 4  # arc length over the four unit edges
    side, t = s.floor(), s - s.floor() - 0.5
    half = torch.full_like(t, 0.5)
    x = torch.where(side == 0, t, torch.where(side == 1, half, torch.where(side == 2, -t, -half)))
    y = torch.where(side == 0, -half, torch.where(side == 1, t, torch.where(side == 2, half, -t)))
    return torch.stack([x, y], dim=1)


def circles(n: int, g: torch.Generator) -> torch.Tensor:
    angle = torch.rand(n, generator=g) * 2 * math.pi
    which = torch.randint(0, 4, (n,), generator=g)
    return CENTRES[which] + RADIUS * torch.stack([angle.cos(), angle.sin()], dim=1)


def laplacian(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    return sum(
        torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(2)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--points", type=int, default=2048, help="interior points")
    parser.add_argument("--edge-points", type=int, default=512, help="on edges and circles")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    g = torch.Generator().manual_seed(args.seed)
    layers: list[torch.nn.Module] = []
    width_in = 2
    for _ in range(args.depth):
        layers += [torch.nn.Linear(width_in, args.width), torch.nn.Tanh()]
        width_in = args.width
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width_in, 1))
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(
                layer.weight,
                std=math.sqrt(2 / sum(layer.weight.shape)),
                generator=g,
            )
            torch.nn.init.zeros_(layer.bias)
    # points in proportion to length, as PINNacle draws its boundary: edges 4, circles 0.4 pi
    n_outer = round(args.edge_points * 4 / (4 + 0.4 * math.pi))
    x_in = interior(args.points, g)
    x_outer = outer_edge(n_outer, g)
    x_holes = circles(args.edge_points - n_outer, g)
    ref = pinnacle_reference("poisson1_cg_data.dat.gz", dim=2)
    x_ref = torch.as_tensor(ref.points, dtype=torch.float32)
    u_ref = torch.as_tensor(ref.values[:, 0], dtype=torch.float32)

    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    print("step,residual,outer,holes,l2_relative_error")
    for step in range(args.steps + 1):
        residual = (laplacian(net, x_in) ** 2).mean()
        outer = ((net(x_outer) - 1) ** 2).mean()
        holes = (net(x_holes) ** 2).mean()
        loss = residual + outer + holes
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(args.steps // 10, 1) == 0:
            with torch.no_grad():
                err = float((net(x_ref).reshape(-1) - u_ref).norm() / u_ref.norm())
            print(f"{step},{residual:.3g},{outer:.3g},{holes:.3g},{err:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
