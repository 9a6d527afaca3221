import pytest

from glfpinn.config import RunConfig, apply_overrides


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"steps": "ten"}, "steps='ten' must be an integer"),
        ({"steps": True}, "steps=True must be an integer"),
        ({"hidden": [0, 4]}, "hidden=[0, 4] must list positive integer widths"),
        ({"lr": "fast"}, "lr='fast' must be a number"),
        ({"sampler_params": [1]}, "must be a mapping"),
        ({"checkpoint_every": -1}, "checkpoint_every=-1 must be >= 0"),
        ({"samplr": "glf"}, "did you mean 'sampler'"),
        ({"compile": "yes"}, "compile='yes' must be 'auto', true, false or a mode: default"),
        ({"device": "meta"}, "device='meta' is not allowed; allowed: cpu, cuda, cuda:N, auto"),
        ({"device": "cuda:x"}, "device='cuda:x' is not allowed"),
        ({"sampler_params": {"M": 2.5}}, "M=2.5 is not allowed; M must be an integer >= 1"),
        ({"sampler": "rad", "sampler_params": {"k": float("inf")}}, "k=inf is not allowed"),
    ],
)
def test_bad_values_are_named(data, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_dict(data)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12", "auto"])
def test_the_devices_a_run_may_name(device):
    assert RunConfig.from_dict({"device": device}).device == device


def test_dotted_overrides_parse_yaml_scalars_and_nest():
    out = apply_overrides(
        {"sampler_params": {"M": 3}}, ["sampler_params.alpha=1e-3", "steps=5", "hidden=[8, 8]"]
    )
    assert out == {"sampler_params": {"M": 3, "alpha": 1e-3}, "steps": 5, "hidden": [8, 8]}


def test_override_without_equals_is_refused():
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["steps"])


def test_round_trip_through_dict():
    cfg = RunConfig(sampler="rad", sampler_params={"k": 2.0}, steps=10)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"stages": [{"optimizer": "adam", "steps": 5}], "steps": 10}, "steps given with stages"),
        ({"stages": []}, "stages=[] is not allowed"),
        ({"stages": [{"optimizer": "adamw"}]}, "needs an optimizer and steps"),
        ({"stages": [{"optimizer": "adamw", "steps": 5, "betas2": 1}]}, "option 'betas2'"),
        ({"stages": "adam"}, "stages='adam' must be a list of stages"),
        ({"loss_weights": {"residual": "big"}}, "loss_weights.residual='big' must be a number"),
        ({"fourier_features": -2}, "fourier_features=-2 must be >= 0"),
        ({"activation": 3}, "activation=3 must be a string"),
    ],
)
def test_bad_training_parts_are_named(data, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_dict(data)


def test_command_line_stages_parse_into_config_data():
    from glfpinn.cli import parse_stage

    assert parse_stage("adamw:steps=2000,lr=1e-3,scheduler=cosine,scheduler.eta_min=1e-5") == {
        "optimizer": "adamw",
        "steps": 2000,
        "lr": 1e-3,
        "scheduler": {"name": "cosine", "eta_min": 1e-5},
    }
    assert parse_stage("lbfgs:steps=500") == {"optimizer": "lbfgs", "steps": 500}
    with pytest.raises(ValueError, match="key=value"):
        parse_stage("adam:steps")
    with pytest.raises(ValueError, match="NAME:steps=N"):
        parse_stage(":steps=3")


def test_a_config_builds_the_trainer_it_describes():
    import torch

    from glfpinn.nn import MLP, FourierFeatures
    from glfpinn.runs import build_trainer

    cfg = RunConfig.from_dict(
        {
            "problem": "laplace",
            "sampler": "mix",
            "sampler_params": {
                "parts": [
                    {"sampler": "glf", "fraction": 0.75, "params": {"alpha": 1e-3}},
                    {"sampler": "uniform-resample", "fraction": 0.25},
                ]
            },
            "stages": [
                {"optimizer": "adamw", "steps": 30, "lr": 1e-2, "scheduler": "cosine"},
                {"optimizer": "lbfgs", "steps": 5},
            ],
            "hidden": [8, 8],
            "activation": "sin",
            "fourier_features": 4,
            "fourier_scale": 2.0,
            "loss_weights": {"conditions": 10.0},
            "n_validation": 50,
            "n_points": 40,
        }
    )
    trainer = build_trainer(cfg)
    net = trainer.model
    assert isinstance(net, MLP) and net.activation_name == "sin"
    assert any(isinstance(m, FourierFeatures) for m in net.modules())
    assert [type(o) for o in trainer.state.optimizers] == [torch.optim.AdamW, torch.optim.LBFGS]
    assert trainer.training_loss.conditions_weight == 10.0
    assert trainer.validation.held_out.shape == (50, 2)
    assert repr(trainer.sampler).startswith("Mix(parts=[(GLF(")
    assert trainer.state.points.shape == (40, 2)


def test_stage_options_may_hold_lists_with_commas():
    from glfpinn.cli import parse_stage

    assert parse_stage("adam:steps=5,betas=[0.9, 0.99],lr=1e-3") == {
        "optimizer": "adam",
        "steps": 5,
        "betas": [0.9, 0.99],
        "lr": 1e-3,
    }


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"model_params": {"width": 3}}, "model_params given without a model"),
        ({"model": "glfpinn:MLP", "hidden": [8]}, "hidden describe the built-in MLP"),
        ({"model": "glfpinn:MLP", "activation": "sin"}, "activation describe the built-in MLP"),
        ({"model": "mlp"}, "must be an import path"),
        ({"model": "glfpinn:__version__"}, "is not callable"),
    ],
)
def test_bad_model_settings_are_named(data, fragment):
    with pytest.raises(ValueError, match=fragment):
        RunConfig.from_dict(data)
