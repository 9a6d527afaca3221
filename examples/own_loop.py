"""GLF inside a plain PyTorch training loop: no Trainer, only a sampler and its context.

    python examples/own_loop.py                  # a minute or two on a laptop CPU

Burgers' equation (hard constraints, so the loss is the residual alone), the problem's MLP and
torch.optim.Adam, written out by hand. Every ``every`` steps GLF picks the next points from the
residuals the last step computed anyway, so a resample costs no residual evaluation. A sampler
that scores new points (RAD, GLF-D, RAR-D, RAR-G, PACMANN) also needs
``residual_fn=glfpinn.Scorer(lambda x: problem.residual(model, x))`` in the context (and
PACMANN its ``.with_grad`` as ``residual_grad_fn``).
"""

from __future__ import annotations

import torch

import glfpinn
from glfpinn import GLF, SamplingContext


def main(tiny: bool = False) -> dict:
    steps, every, n = (60, 20, 500) if tiny else (4000, 500, 2000)
    problem = glfpinn.problems.get("burgers")
    model = problem.build_model(hidden=(32, 32, 32), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)  # every draw, the sampler's included, comes from it
    sampler = GLF()

    # A fixed held-out set judges progress: the training loss is measured on moving points.
    held_out = problem.domain.sample(2000, gen)

    def held_out_loss() -> float:
        return float(problem.residual(model, held_out).detach().pow(2).mean())

    x = problem.domain.sample(n, gen)
    weights = None  # GLF's default returns none: every point weighs 1
    conditions = problem.condition_points(n, gen, x.dtype)  # empty under hard constraints
    state = sampler.init_state(x)
    start, losses, resamples = held_out_loss(), [], 0
    for step in range(1, steps + 1):
        r = problem.residual(model, x)
        loss = (r**2).mean() if weights is None else (weights * r**2).mean()
        condition = problem.condition_loss(model, conditions)
        if condition is not None:
            loss = loss + condition
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % every == 0 and step < steps:
            ctx = SamplingContext(
                points=x,
                residuals=r.detach().abs(),  # this step's, at these points: free
                domain=problem.domain,
                step=step,
                generator=gen,
            )
            out = sampler.resample(ctx, state)
            x, weights, state = out.points, out.weights, out.state
            resamples += 1
            print(f"step {step}: loss {losses[-1]:.3e}, resampled (ess {out.info['ess']:.2f})")
    end = held_out_loss()
    print(f"step {steps}: held-out mean r^2 {start:.3e} -> {end:.3e}")
    return {
        "initial_loss": losses[0],
        "final_loss": losses[-1],
        "initial_held_out_loss": start,
        "final_held_out_loss": end,
        "resamples": resamples,
        "points": x,
    }


if __name__ == "__main__":
    main()
