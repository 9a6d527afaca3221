"""Training callbacks with the hook names Lightning users know, and the progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from glfpinn.training.result import TrainResult
    from glfpinn.training.trainer import Trainer

__all__ = ["Callback", "ProgressBar"]


class Callback:
    """Override any hook; every hook receives the trainer. ``state_dict`` goes into checkpoints.

    ``on_train_batch_end`` gets the step's loss as a 0-d tensor left on the device: reading it
    (``float(loss)``) waits for the device, so a callback that reads it only now and then keeps
    the training step asynchronous.
    """

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: Tensor) -> None: ...

    def on_resample(self, trainer: Trainer, info: dict[str, Any]) -> None: ...

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None: ...

    def on_exception(self, trainer: Trainer, exception: BaseException) -> None:
        """Training ended with ``exception`` (a divergence, an interrupt, a failure)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar over optimizer steps showing the loss and the last L2 error (or, for a
    problem without a reference solution, the mean validation residual)."""

    def __init__(self, refresh_every: int = 50) -> None:
        self.refresh_every = refresh_every
        self._bar = None
        self._shown: dict[str, str] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm  # lazily: the library works without a terminal

        if self._bar is not None:  # a later fit() of a run trained in pieces
            self._bar.close()
        self._bar = tqdm(total=trainer.total_steps, initial=trainer.state.step, unit="step")

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: Tensor) -> None:
        if self._bar is not None and (step + 1) % self.refresh_every == 0:
            self._bar.update(step + 1 - self._bar.n)
            self._bar.set_postfix(loss=f"{float(loss):.3e}", **self._shown, refresh=False)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        l2 = metrics.get("l2_relative_error")
        key, value = ("l2", l2) if l2 is not None else ("residual", metrics.get("residual_mean"))
        self._shown = {key: f"{value:.3e}"}

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self._bar is not None:
            self._bar.update(trainer.total_steps - self._bar.n)
            self._bar.close()
