"""When to resample: a period from a start, and a step from which the set stays fixed."""

import pytest

from glfpinn.cli import main
from glfpinn.config import RunConfig, config_of
from glfpinn.runs import build_trainer
from glfpinn.training import Every


def test_every_resamples_on_its_period_and_never_from_its_stop_on():
    due = [step for step in range(3001) if Every(250, stop=2000).due(step)]
    assert due == list(range(250, 2000, 250))
    assert [s for s in range(1001) if Every(250, start=100).due(s)] == [100, 350, 600, 850]
    assert [s for s in range(1001) if Every(250).due(s)] == [250, 500, 750, 1000]


def test_resample_until_goes_from_the_config_to_the_trainer_and_back():
    cfg = RunConfig.from_dict(
        {"problem": "burgers", "sampler": "rad", "steps": 6, "lbfgs_steps": 4,
         "resample_every": 2, "resample_until": 6, "n_points": 32, "hidden": [8]}
    )  # fmt: skip
    trainer = build_trainer(cfg)
    assert trainer.schedule.get_params() == {"period": 2, "start": 0, "stop": 6}
    assert config_of(trainer)[0]["resample_until"] == 6
    result = trainer.fit()
    assert result.resamples == 2  # before steps 2 and 4; none in the L-BFGS steps 6-9


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--resample-every", "2", "--resample-until", "0"], "resample_until=0 must be >= 1"),
        (["--resample-until", "3"], "resample_until=3 needs resample_every (the period)"),
    ],
)
def test_a_bad_resample_until_is_one_line_and_status_2(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", "--problem", "burgers", "--steps", "4", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"glfpinn: error: {message}\n"
    assert not out.exists()
