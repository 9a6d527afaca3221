"""One checkpoint for a run on K ranks, and each rank's state out of it.

A trainer's state on K ranks differs between ranks only in the training points (with their
loss weights and last residuals), the sampler's state, the sampling generator and the cost
counters; the network, the optimizers and everything else are the same on every rank. The
joined state is rank 0's, with the points (weights, residuals) of every rank concatenated in
rank order, and ``ranks``: per rank its number of points, sampler state, generator and costs.

Resuming on the same K gives every rank back exactly its own part. On a different K (one
process included), a run whose sampler draws from the whole set is redistributed: every rank
of such a run holds the same stream and the same sampler state, so the union of the points is
sliced anew and the stream carries on, which is the run the new K would have trained. A
sampler that resamples per rank is refused: its K streams have no counterpart on another K.
"""

from __future__ import annotations

from typing import Any

import torch

from glfpinn._tree import tree_to
from glfpinn.distributed.group import ProcessGroup
from glfpinn.distributed.sharding import shares

__all__ = ["join", "joined", "split"]

#: What each rank holds of its own, beside its rows.
_RANK_KEYS = ("sampler_state", "generator", "costs")
#: One row per training point: joined by concatenation.
_ROW_KEYS = ("points", "weights", "last_residuals")
#: Cost counters summed over the ranks in a run's result (the rest are rank 0's).
_SUMMED_COSTS = ("residual_evals", "train_residual_evals")


def join(state: dict[str, Any], group: ProcessGroup, per_rank: bool) -> dict[str, Any]:
    """The whole run's state from this rank's ``state``, on every rank (every rank must call
    it). ``per_rank``: whether the sampler resamples per rank (each rank its own stream)."""
    # on the CPU: a CUDA tensor would be unpickled onto the sender's card number
    mine = {key: tree_to(state[key], "cpu") for key in (*_RANK_KEYS, *_ROW_KEYS)}
    return joined(state, group.all_gather_object(mine), per_rank)


def joined(state: dict[str, Any], parts: list[dict[str, Any]], per_rank: bool) -> dict[str, Any]:
    """``state`` (rank 0's, the same as every rank's but for the parts) with every rank's
    ``parts`` (its rows and its own keys, by rank) joined in."""
    whole = dict(state)
    for key in _ROW_KEYS:
        rows = [part[key] for part in parts]
        if key == "weights" and any(r is not None for r in rows):
            # a per-rank sampler may weigh one rank's points and not another's: weight 1
            like = next(r for r in rows if r is not None)
            sizes = [part["points"].shape[0] for part in parts]
            rows = [like.new_ones(n) if r is None else r for r, n in zip(rows, sizes, strict=True)]
        whole[key] = None if any(r is None for r in rows) else torch.cat(rows)
    whole["ranks"] = [
        {"n_points": int(part["points"].shape[0]), **{k: part[k] for k in _RANK_KEYS}}
        for part in parts
    ]
    whole["world_size"] = len(parts)
    whole["per_rank"] = per_rank
    return whole


def _refuse(saved: int, now: int, why: str) -> ValueError:
    return ValueError(
        f"the checkpoint is of a run on {saved} rank{'s' if saved > 1 else ''} and this run "
        f"has {now}: {why}; resume it on {saved}"
    )


def split(state: dict[str, Any], group: ProcessGroup | None, per_rank: bool) -> dict[str, Any]:
    """This rank's state out of a whole run's ``state`` (from :func:`join`, or a single
    process's), for a run on ``group`` whose sampler resamples ``per_rank`` or not."""
    saved = int(state.get("world_size", 1))
    now, rank = (1, 0) if group is None else (group.world_size, group.rank)
    if saved > 1 and "ranks" not in state:
        raise ValueError(
            f"the checkpoint holds one rank's points of a run on {saved} ranks (written by an "
            "earlier glfpinn); it cannot be resumed"
        )
    parts = state.get("ranks") or [
        {"n_points": int(state["points"].shape[0]), **{k: state[k] for k in _RANK_KEYS}}
    ]
    saved_per_rank = saved > 1 and bool(state.get("per_rank"))
    total = sum(part["n_points"] for part in parts)
    if saved == now and saved_per_rank == (per_rank and now > 1):
        part = parts[rank]
        start = sum(p["n_points"] for p in parts[:rank])
        rows, costs = slice(start, start + part["n_points"]), part["costs"]
    elif saved_per_rank or (per_rank and now > 1):
        raise _refuse(saved, now, "its sampler resamples per rank, from one stream per rank")
    else:  # every rank of the saved run held the same stream and sampler state
        part = parts[0]
        sizes = shares(total, now)
        start = sum(sizes[:rank])
        rows = slice(start, start + sizes[rank])
        costs = _moved_costs(parts, rank)
    view = dict(state)
    for key in _ROW_KEYS:
        view[key] = None if state[key] is None else state[key][rows]
    view.update(sampler_state=part["sampler_state"], generator=part["generator"], costs=costs)
    return view


def _moved_costs(parts: list[dict[str, Any]], rank: int) -> dict[str, Any]:
    """The costs a rank starts from when a run moves to another K: the new rank 0 takes the old
    rank 0's, with the counts the result sums over the ranks summed; the others start at 0."""
    first = dict(parts[0]["costs"])
    if rank > 0:
        return {key: type(value)(0) for key, value in first.items()}
    for key in _SUMMED_COSTS:
        first[key] = sum(part["costs"][key] for part in parts)
    return first
