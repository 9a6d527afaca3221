"""What a checkpoint says about itself: which run wrote it, and whether it is still whole.

A checkpoint records a fingerprint of what defines its run (:data:`IDENTITY`: the problem and
its parameters, the sampler and its parameters, the number of points, the network, the dtype
and the seed), one digest per key, twice: of the config.yaml it was written with
(``"config"``) and of the trainer's own parts as :func:`~glfpinn.config.config_of` reads them
(``"parts"``, which does not depend on how the run was started: a command line leaves
defaults out, a Python run writes them). Loading compares the first with config.yaml, resuming
the second with the resuming trainer, and a disagreement is refused naming the key.

It also records a checksum of everything else it holds, so a damaged file (one weight
overwritten, say) is refused rather than trained on or predicted with. A checksum guards
against accidents, not forgery: whoever can write the file can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch

from glfpinn.plugins import absolute_import_path

__all__ = ["IDENTITY", "Fingerprint", "fingerprint", "checksum", "seal", "unseal", "check"]

#: The config keys that say which run a checkpoint belongs to (what a resume may change, steps
#: and the evaluation and checkpoint periods, is not among them; nor is the device).
IDENTITY = (
    "problem",
    "problem_params",
    "sampler",
    "sampler_params",
    "n_points",
    "hidden",
    "activation",
    "fourier_features",
    "fourier_scale",
    "model",
    "model_params",
    "dtype",
    "seed",
)
#: The checkpoint key its record goes under.
KEY = "run"

#: ``{key: digest}`` over :data:`IDENTITY`.
Fingerprint = dict[str, str]


def fingerprint(config: Mapping[str, Any]) -> Fingerprint:
    """One digest per :data:`IDENTITY` key of the run config data ``config``; a key left out
    counts as its default, and a file path as its absolute form, as config.yaml is read back."""
    from glfpinn.config import RunConfig

    defaults = RunConfig().to_dict()
    out: Fingerprint = {}
    for key in IDENTITY:
        value = config.get(key, defaults[key])
        if key in ("problem", "sampler", "model") and isinstance(value, str):
            value = absolute_import_path(value)
        text = json.dumps(_canonical(value), sort_keys=True, default=repr)
        out[key] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def _canonical(value: Any) -> Any:
    """``value`` with every whole float as an int (``1.0`` and ``1`` are one setting) and every
    tuple as a list (YAML writes both the same way)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def checksum(state: Any) -> str:
    """A digest of everything in a checkpoint's state: every tensor's dtype, shape and bytes,
    every other value's type and repr, in a fixed order."""
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}:".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            digest.update(f"{type(key).__name__}:{key!s}=".encode())
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"L{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def seal(state: dict[str, Any], config: Fingerprint, parts: Fingerprint) -> dict[str, Any]:
    """``state`` with its record: the run's two fingerprints and the state's checksum."""
    record = {"config": dict(config), "parts": dict(parts), "checksum": checksum(state)}
    return {**state, KEY: record}


def unseal(state: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``state`` without its record, and the record (None for a checkpoint written before
    checkpoints had one); a state whose checksum disagrees is a one-line ValueError naming
    ``where`` (the file)."""
    if KEY not in state:
        return state, None
    rest = {k: v for k, v in state.items() if k != KEY}
    record = state[KEY]
    if not isinstance(record, dict) or record.get("checksum") != checksum(rest):
        raise ValueError(
            f"checkpoint {where} is damaged: its contents do not match the checksum written with "
            "them; delete it and rerun with --overwrite"
        )
    return rest, record


def check(recorded: Any, expected: Fingerprint, what: str, where: str, remedy: str) -> None:
    """A one-line ValueError naming the first :data:`IDENTITY` key whose digest in ``recorded``
    (a checkpoint's) differs from ``expected`` (``what``'s: config.yaml, a trainer)."""
    if not isinstance(recorded, dict):
        raise ValueError(f"checkpoint {where} is damaged (its run fingerprint is not a mapping)")
    for key in IDENTITY:
        if recorded.get(key) != expected[key]:
            raise ValueError(
                f"checkpoint {where} was written by another run than {what} describes: its "
                f"{key} differs; {remedy}"
            )
