"""Swap every part of the training loop: an nn.Sequential model, a Mix of samplers, AdamW with a
cosine schedule then L-BFGS, a user metric, and training in two pieces.

    python examples/training_parts.py            # about a minute on a laptop CPU
"""

from __future__ import annotations

import torch

import glfpinn
from glfpinn import GLF, Evaluator, Mix, Stage, Trainer, UniformResample


def main(tiny: bool = False) -> dict:
    adam_steps, lbfgs_steps = (40, 20) if tiny else (2000, 300)
    torch.manual_seed(0)  # only for nn.Linear's own initialisation of this hand-made model
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    )
    trainer = Trainer(
        glfpinn.problems.get("burgers"),
        Mix([(GLF(), 0.8), (UniformResample(), 0.2)]),
        model=net,  # burgers wraps it in its hard constraint; a Sequential keeps the fast path
        plan=[
            Stage("adamw", adam_steps, lr=3e-3, weight_decay=1e-5, scheduler="cosine"),
            Stage("lbfgs", lbfgs_steps),
        ],
        n_points=500 if tiny else 2000,
        # u(x=0, t=1) is 0 by symmetry: a check on the solution that needs no reference
        evaluator=Evaluator(metrics={"u_at_shock": lambda m: float(m(torch.tensor([[0.0, 1.0]])))}),
        eval_every=max(adam_steps // 4, 1),
        seed=0,
    )
    trainer.fit(until=adam_steps // 2)  # half of the AdamW stage ...
    half = dict(trainer.state.metrics)
    print(f"step {trainer.state.step}: {half}")
    result = trainer.fit()  # ... and the rest: the same run as one fit()
    print(
        f"step {result.steps}: L2 {result.l2_relative_error:.3e}, "
        f"mean |residual| {result.residual_mean:.3e}, u(0, 1) {result.metrics['u_at_shock']:.2e} "
        "(exact: 0)"
    )
    return {"initial": trainer.state.initial_metrics, "half": half, "result": result}


if __name__ == "__main__":
    main()
