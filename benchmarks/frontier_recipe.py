"""One run of a candidate frontier recipe, its error printed at every evaluation: how the recipe
of configs/frontier.yaml was chosen (on seed 100, which the profile does not report).

A float32 Adam warm-up on the initial points, then rounds of [resample, a quasi-Newton stage in
float64]:

    python benchmarks/frontier_recipe.py burgers rad --adam 500 --rounds 20 --round-steps 150
    python benchmarks/frontier_recipe.py burgers rad --adam 2000 --rounds 8 --round-steps 250

Each line is JSON: step, L2 relative error, training loss, training seconds.
"""

from __future__ import annotations

import argparse
import json

from glfpinn import Callback, OptimizationPlan, Stage, problems, samplers
from glfpinn.training import make_trainer
from glfpinn.training.plan import Rounds


class PrintEvaluations(Callback):
    def on_validation_end(self, trainer, metrics) -> None:
        line = {k: metrics[k] for k in ("step", "l2_relative_error", "loss")}
        print(json.dumps({**line, "elapsed_s": round(metrics["elapsed_s"], 1)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem")
    parser.add_argument("sampler")
    parser.add_argument("--optimizer", default="ssbroyden", help="the rounds' quasi-Newton stage")
    parser.add_argument("--adam", type=int, default=500, help="Adam warm-up steps")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--round-steps", type=int, default=150)
    parser.add_argument("--hidden", default="32,32,32")
    parser.add_argument("--n-points", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    plan = OptimizationPlan(
        [Stage("adam", args.adam, lr=1e-3)],
        rounds=Rounds([Stage(args.optimizer, args.round_steps, dtype="float64")], args.rounds),
    )
    trainer = make_trainer(
        problems.get(args.problem),
        samplers.get(args.sampler),
        plan=plan,
        n_points=args.n_points,
        hidden=[int(w) for w in args.hidden.split(",")],
        seed=args.seed,
        eval_every=args.eval_every,
        callbacks=[PrintEvaluations()],
        compile=True,
    )
    result = trainer.fit()
    print(json.dumps({"final_l2": result.l2_relative_error, "wall_time_s": result.wall_time_s}))


if __name__ == "__main__":
    main()
