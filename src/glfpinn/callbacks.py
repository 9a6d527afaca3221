"""Training callbacks with the hook names Lightning users know, and the progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glfpinn.train import Trainer, TrainResult

__all__ = ["Callback", "ProgressBar"]


class Callback:
    """Override any hook; every hook receives the trainer. ``state_dict`` goes into checkpoints."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: float) -> None: ...

    def on_resample(self, trainer: Trainer, info: dict[str, Any]) -> None: ...

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar over optimizer steps showing the loss and the last L2 error."""

    def __init__(self, refresh_every: int = 50) -> None:
        self.refresh_every = refresh_every
        self._bar = None
        self._l2 = float("nan")

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm  # lazily: the library works without a terminal

        self._bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step")

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: float) -> None:
        if self._bar is not None and (step + 1) % self.refresh_every == 0:
            self._bar.update(step + 1 - self._bar.n)
            self._bar.set_postfix(loss=f"{loss:.3e}", l2=f"{self._l2:.3e}", refresh=False)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._l2 = metrics["l2_relative_error"]

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self._bar is not None:
            self._bar.update(trainer.total_steps - self._bar.n)
            self._bar.close()
