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
        ({"compile": "yes"}, "compile='yes' must be true or false"),
    ],
)
def test_bad_values_are_named(data, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_dict(data)


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
