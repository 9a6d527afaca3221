"""The collapse of issue #23 at a tiny budget: the paper's GLF on Helmholtz (residuals of order
1-100, h about 1e-6) piles its points into clumps and the run says so, once; robust GLF and
uniform resampling on the same run stay spread and silent."""

import warnings

import pytest
import torch

from glfpinn import Every, problems, samplers
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD, CollapseWarning
from glfpinn.training import make_trainer
from glfpinn.training.callbacks import Callback


class Coverage(Callback):
    def __init__(self):
        self.values = []

    def on_resample(self, trainer, info):
        self.values.append(info["coverage"])


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(sampler: str) -> tuple[list[float], list[warnings.WarningMessage]]:
    log = Coverage()
    trainer = make_trainer(
        problems.get("helmholtz", grid_size=21),
        samplers.get(sampler),
        steps=48,
        n_points=400,
        n_condition=100,
        hidden=(16, 16),
        schedule=Every(4),
        eval_every=48,
        compile=False,
        callbacks=[log],
        sampler_name=sampler,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()
    return log.values, [w for w in caught if issubclass(w.category, CollapseWarning)]


def test_the_papers_glf_collapses_on_helmholtz_and_is_told_once():
    values, warned = _run("glf")
    assert len(values) == 11
    assert min(values) < DEFAULT_THRESHOLD
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "'glf' collapsed" in message and "glf-robust" in message


@pytest.mark.parametrize("sampler", ["glf-robust", "uniform-resample"])
def test_a_healthy_run_stays_spread_and_silent(sampler):
    values, warned = _run(sampler)
    assert min(values) > DEFAULT_THRESHOLD
    assert warned == []


def test_a_resumed_run_does_not_warn_again():
    def trainer():
        return make_trainer(
            problems.get("helmholtz", grid_size=21),
            samplers.get("glf"),
            steps=48,
            n_points=400,
            n_condition=100,
            hidden=(16, 16),
            schedule=Every(4),
            eval_every=48,
            compile=False,
        )

    first = trainer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first.fit(until=40)
        state = first.state_dict()
        second = trainer()
        second.load_state_dict(state)
        second.fit()
    warned = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(warned) == 1 and second.collapse.warned
    assert second.sampler_name == "glf"  # the registry's name, not given


def test_a_sampler_without_a_given_name_is_called_by_its_registry_name():
    tr = make_trainer(problems.get("burgers"), samplers.get("glf-robust"), steps=1, n_points=50)
    from glfpinn.training.trainer import Trainer

    plain = Trainer(tr.problem, tr.sampler, plan=tr.plan, n_points=50, compile=False)
    assert plain.sampler_name == "glf-robust"
