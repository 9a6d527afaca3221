"""Your own network on the fast path: a residual MLP with skip connections and a different
activation per layer, trained compiled with AdamW and a cosine schedule on Laplace's equation.

The derivative engines follow any network that torch.fx can trace into Linear layers, tanh /
sin / silu / gelu activations, sums, products and concatenations (``glfpinn.ops.supports_taylor``
says whether they do), so this hand-written module trains as fast as the built-in MLP and
compiles (no fallback to eager). ``glfpinn.nn.ResidualMLP`` and ``ModifiedMLP`` are ready-made
ones (``--model glfpinn.nn:residual_mlp`` from the command line).

    python examples/residual_mlp.py            # a few minutes on a laptop CPU
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

import glfpinn
from glfpinn import Stage, Trainer, Uniform


class SkipNet(nn.Module):
    """sin features, then residual blocks ``h + tanh(W h + b)``, then a silu head."""

    def __init__(self, in_dim: int, width: int = 48, blocks: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.head = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.sin(self.inp(x))
        for block in self.blocks:
            h = h + torch.tanh(block(h))  # the skip connection
        return self.out(nn.functional.silu(self.head(h)))


def main(tiny: bool = False) -> dict:
    steps = 30 if tiny else 3000
    problem = glfpinn.problems.get("laplace")
    torch.manual_seed(0)  # only for nn.Linear's own initialisation of this hand-made model
    net = SkipNet(problem.dim)
    assert glfpinn.ops.supports_taylor(net), "the fast derivative engines do not follow it"
    with warnings.catch_warnings():
        # a fallback to eager or to the generic derivative path would be a RuntimeWarning or a
        # UserWarning: make either an error
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("error", UserWarning)
        trainer = Trainer(
            problem,
            Uniform(),
            model=net,
            plan=[Stage("adamw", steps, lr=2e-3, weight_decay=1e-5, scheduler="cosine")],
            n_points=500 if tiny else 2000,
            eval_every=max(steps // 3, 1),
            compile=True,  # even a short run: this example is about compiling
            seed=0,
        )
        result = trainer.fit()
    print(
        f"{result.steps} AdamW steps: L2 {result.l2_relative_error:.3e} "
        f"(from {result.initial_l2_relative_error:.3e}), compiled: "
        f"{trainer.training_loss.compiled is not None}"
    )
    return {"result": result, "trainer": trainer}


if __name__ == "__main__":
    main()
