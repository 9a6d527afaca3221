import io

import pytest
import torch

from glfpinn import GLF, Callback, Every, OptimizationPlan, Stage, Trainer
from glfpinn.config import RunConfig
from glfpinn.training import make_trainer
from glfpinn.training.plan import LBFGS_DEFAULTS
from tests.helpers import Poisson1D

LR = 1e-2


def _adamw_cosine_lbfgs(adam_steps=60, lbfgs_steps=20):
    return [
        Stage("adamw", adam_steps, lr=LR, weight_decay=1e-4, scheduler="cosine"),
        Stage("lbfgs", lbfgs_steps),
    ]


def _trainer(plan, **kw):
    kw.setdefault("eval_every", 20)
    kw.setdefault("schedule", Every(25))
    return make_trainer(Poisson1D(), GLF(alpha=1e-3), plan=plan, **kw)


def test_adamw_with_a_cosine_schedule_then_lbfgs():
    tr = _trainer(_adamw_cosine_lbfgs())
    adamw, lbfgs = tr.state.optimizers
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(lbfgs, torch.optim.LBFGS)
    assert adamw.param_groups[0]["weight_decay"] == 1e-4

    tr.fit(until=30)  # halfway through the cosine: lr = LR (1 + cos(pi / 2)) / 2 = LR / 2
    assert adamw.param_groups[0]["lr"] == pytest.approx(LR / 2, rel=1e-9)
    after_adam = tr.fit(until=60)
    assert adamw.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert int(next(iter(adamw.state.values()))["step"]) == 60  # two resamples reset nothing

    result = tr.fit()
    first = next(iter(lbfgs.state.values()))
    assert first["n_iter"] == 20 and result.steps == 80
    assert result.l2_relative_error < after_adam.l2_relative_error
    assert [s["optimizer"] for s in result.stages] == ["AdamW", "LBFGS"]
    assert result.stages[0]["scheduler"] == "CosineAnnealingLR"


def test_default_plan_is_adam_then_lbfgs_with_a_line_search():
    tr = make_trainer(Poisson1D(), GLF(), steps=10, lbfgs_steps=5, lr=3e-3)
    adam, lbfgs = tr.state.optimizers
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["lr"] == 3e-3
    for key, value in LBFGS_DEFAULTS.items():
        assert lbfgs.param_groups[0][key] == value, key
    assert tr.total_steps == 15


def test_a_scheduled_run_resumes_exactly_from_its_state_dict():
    full = _trainer(_adamw_cosine_lbfgs(40, 10)).fit()
    first = _trainer(_adamw_cosine_lbfgs(40, 10))
    first.fit(until=25)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    second = _trainer(_adamw_cosine_lbfgs(40, 10))
    second.load_state_dict(torch.load(buf, weights_only=True))
    resumed = second.fit()
    assert resumed.final_loss == full.final_loss
    assert resumed.l2_relative_error == full.l2_relative_error


def test_optimizer_and_scheduler_instances_and_factories():
    model = Poisson1D().build_model((8,), generator=torch.Generator().manual_seed(0))
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    plan = [
        Stage(sgd, 5, scheduler=torch.optim.lr_scheduler.StepLR(sgd, step_size=2, gamma=0.5)),
        Stage(torch.optim.RMSprop, 5, lr=1e-3, scheduler=lambda opt: None),
    ]
    tr = Trainer(Poisson1D(), GLF(), plan=plan, model=model, eval_every=5)
    tr.fit()
    assert tr.state.optimizers[0] is sgd
    assert sgd.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**2)  # steps 2 and 4
    assert isinstance(tr.state.optimizers[1], torch.optim.RMSprop)


def test_an_optimizer_instance_on_other_parameters_is_refused():
    other = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="does not hold exactly the model's parameters"):
        Trainer(Poisson1D(), GLF(), plan=[Stage(torch.optim.Adam(other.parameters()), 5)])


class _Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, step, loss):
        self.losses.append(float(loss))


def test_plateau_scheduler_steps_once_per_step_on_the_training_loss():
    plan = [Stage("adam", 30, lr=1e-2, scheduler="plateau", scheduler_options={"patience": 0})]
    seen = _Losses()
    tr = _trainer(plan, callbacks=[seen])
    tr.fit()
    plateau = tr.state.schedulers[0]
    assert plateau.last_epoch == 30
    # it tracks the best loss it was given (improvements count above a 1e-4 relative threshold)
    assert plateau.best == pytest.approx(min(seen.losses), rel=1e-3)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: Stage("adamq", 10), "optimizer 'adamq' is unknown (did you mean 'adam'?)"),
        (lambda: Stage("adamw", 10, weight_decy=0.1), "AdamW option 'weight_decy' is unknown"),
        (lambda: Stage("adam", 0), "steps=0 is not allowed"),
        (lambda: Stage("adam", 10, scheduler="cosin"), "scheduler 'cosin' is unknown"),
        (
            lambda: Stage("adam", 10, scheduler="cosine", scheduler_options={"tmax": 3}),
            "CosineAnnealingLR option 'tmax' is unknown",
        ),
        (lambda: Stage(42, 10), "optimizer=42 is not allowed"),
        (lambda: OptimizationPlan([]), "stages=[] is not allowed"),
        (lambda: Stage.from_dict({"optimizer": "adam"}), "needs an optimizer and steps"),
    ],
)
def test_bad_stages_are_refused_in_one_line(make, fragment):
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_plan_and_the_default_plans_arguments_exclude_each_other():
    with pytest.raises(ValueError, match="steps given with stages"):
        make_trainer(Poisson1D(), GLF(), steps=10, plan=[Stage("adam", 10)])
    with pytest.raises(ValueError, match="lbfgs_steps given with stages"):
        RunConfig.from_dict({"stages": [{"optimizer": "adam", "steps": 5}], "lbfgs_steps": 0})
    with pytest.raises(TypeError, match="plan"):  # the Trainer itself takes a plan, no shortcut
        Trainer(Poisson1D(), GLF())


def test_the_builder_and_the_config_share_one_default_plan():
    """One rule, one default: neither steps nor a plan is 20,000 Adam steps at lr 1e-3."""
    default = make_trainer(Poisson1D(), GLF(), compile=False).plan
    assert default.describe() == RunConfig().plan().describe()
    assert default.describe() == [
        {"optimizer": "Adam", "steps": 20_000, "options": {"lr": 1e-3}, "scheduler": None}
    ]
    short = make_trainer(Poisson1D(), GLF(), steps=7, lbfgs_steps=3, lr=0.01, compile=False).plan
    assert short.describe() == RunConfig(steps=7, lbfgs_steps=3, lr=0.01).plan().describe()


def test_stage_from_config_data_with_a_scheduler_mapping():
    stage = Stage.from_dict(
        {
            "optimizer": "adamw",
            "steps": 100,
            "lr": 1e-3,
            "scheduler": {"name": "cosine", "eta_min": 1e-5},
        }
    )
    assert stage.options == {"lr": 1e-3} and stage.scheduler == "cosine"
    assert stage.scheduler_options == {"eta_min": 1e-5}
    assert repr(stage) == (
        "Stage('adamw', 100, scheduler='cosine', scheduler_options={'eta_min': 1e-05}, lr=0.001)"
    )


def _rounds_plan():
    from glfpinn.training.plan import Rounds

    return OptimizationPlan(
        [Stage("adam", 10, lr=LR)],
        rounds=Rounds([Stage("adam", 4, lr=LR), Stage("lbfgs", 3)], repeat=3),
    )


def test_rounds_repeat_their_stages_and_resample_at_each_rounds_start():
    plan = _rounds_plan()
    assert plan.total_steps == 10 + 3 * 7
    # the warm-up's stage, then the round's two, the same ones in every repetition
    assert [plan.stage_at(step) for step in (0, 9, 10, 13, 14, 16, 17, 24, 30)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        1,
        1,
        2,
    ]

    class Resamples(Callback):
        steps: list[int] = []

        def on_resample(self, trainer, info):
            self.steps.append(info["step"])

    seen = Resamples()
    tr = make_trainer(Poisson1D(), GLF(alpha=1e-3), plan=plan, callbacks=[seen], compile=False)
    assert len(tr.state.optimizers) == 3  # one optimizer per distinct stage
    result = tr.fit()
    assert seen.steps == [10, 17, 24] and result.steps == 31
    lbfgs = tr.state.optimizers[2]
    assert next(iter(lbfgs.state.values()))["n_iter"] == 9  # 3 iterations in each of 3 rounds


def test_rounds_round_trip_through_the_run_config():
    from glfpinn.config import config_of

    tr = make_trainer(Poisson1D(), GLF(alpha=1e-3), plan=_rounds_plan(), compile=False)
    data, notes = config_of(tr)
    assert data["rounds"]["repeat"] == 3 and "resample_every" not in data
    rebuilt = RunConfig.from_dict(
        {**data, "problem": "allen-cahn", "problem_params": {}, "model": None}
    )
    assert repr(rebuilt.plan()) == repr(tr.plan)


def test_rounds_alone_have_no_warm_up():
    cfg = RunConfig.from_dict(
        {"rounds": {"repeat": 2, "stages": [{"optimizer": "adam", "steps": 5}]}}
    )
    assert cfg.plan().total_steps == 10 and cfg.plan().stages == []


@pytest.mark.parametrize(
    "rounds, fragment",
    [
        ({"repeat": 2}, "needs repeat: K and stages"),
        ({"repeat": 0, "stages": [{"optimizer": "adam", "steps": 5}]}, "rounds repeat=0"),
        ({"repeat": 2, "stages": [], "every": 3}, "unknown"),
    ],
)
def test_bad_rounds_are_refused_in_one_line(rounds, fragment):
    with pytest.raises(ValueError) as err:
        RunConfig.from_dict({"rounds": rounds})
    assert fragment in str(err.value) and "\n" not in str(err.value)
