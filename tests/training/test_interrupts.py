import os
import signal

import pytest
import torch

import glfpinn
from glfpinn import GLF, Callback, Every
from glfpinn.training import Interrupted, make_trainer
from tests.helpers import Poisson1D

KW = dict(steps=30, lr=1e-2, schedule=Every(10), eval_every=10)


class _SignalAt(Callback):
    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, step, loss):
        if step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_at_the_step_boundary_and_the_checkpoint_resumes_exactly(tmp_path, signum):
    full = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), **KW)
    before = signal.getsignal(signum)
    trainer = make_trainer(Poisson1D(), GLF(alpha=1e-3), callbacks=[_SignalAt(14, signum)], **KW)
    glfpinn.record(trainer, tmp_path / "r", checkpoint_every=1000)
    with pytest.raises(Interrupted) as info:
        trainer.fit()
    assert info.value.signum == signum and trainer.state.step == 15  # step 14 completed
    assert signal.getsignal(signum) is before  # the handler is restored
    state = torch.load(tmp_path / "r/checkpoint.pt", weights_only=True)
    assert state["step"] == 15  # the final checkpoint of the whole step
    assert not list((tmp_path / "r").glob(".*.tmp"))
    del trainer
    resumed = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), out=tmp_path / "r", mode="resume", **KW)
    assert resumed.final_loss == full.final_loss and resumed.steps == 30
