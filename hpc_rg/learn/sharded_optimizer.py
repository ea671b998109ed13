"""The optimiser step of a data-parallel training split over the ranks of a node (ZeRO stage 1 within a node).

Without it every rank runs the same optimiser step on every parameter: on the 1600-400 RBM (641,600
parameters, SGD with momentum) 0.3-0.8 ms per step per rank, as much as the gradient sum, and it does not
shrink with more ranks. Here, during an epoch's updates, the parameters live in the node's shared memory
(`GradientSum.parameters`, one copy per node; `share`, `unshare`) and local rank i updates only its slice, the slice whose gradient sum it has
just computed, before the ranks meet at the sum's closing barrier: each rank does 1/N of the step, and
nobody copies parameters around. On several nodes each node's rank i updates the same slice of its own
node's copy with the same summed gradient, so the copies stay equal.

The update is elementwise (SGD, Adam, their weight decay), so slicing changes no arithmetic: the result is
that of the whole step up to the vector/scalar split inside the kernels (a rounding at most). The optimiser
state of a slice lives with its rank; `state_dict` gathers it over the node into the whole optimiser's
format (checkpoints and resumes are independent of the rank count) and `load_state_dict` takes each rank's
slice of one.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class ShardedOptimizer:
    """Quacks like the optimiser `build(groups)` makes for `groups` (torch param-group dicts over the
    parameters), for the trainer's use: `param_groups` (the lr schedule), `state_dict`, `load_state_dict`;
    `step_slice(total)` is the step, called by `GradientSum.reduce`. `close()` gives the parameters their own
    memory back (local; before the shared windows go back to the pool)."""

    def __init__(self, layout: list[nn.Parameter], groups: list[dict], gsum,
                 build: Callable[[list[dict]], torch.optim.Optimizer]):
        """`layout`: the parameters in the order of the flat gradient sum; `groups` hold the same ones."""
        self.gsum = gsum
        start, off = {}, 0
        for p in layout:
            start[id(p)] = off
            off += p.numel()
        self.params = [p for g in groups for p in g["params"]]       # the optimiser's order (its indices)
        self.group_sizes = [len(g["params"]) for g in groups]
        self.offsets = [start[id(p)] for p in self.params]
        flat = gsum.parameters
        self.shared = False
        lo, hi = gsum.slice.start, gsum.slice.stop
        # this rank's segments, in group order: (parameter index, first and end element within it, segment)
        self.segments: list[tuple[int, int, int, nn.Parameter]] = []
        self.segments_per_group: list[int] = []
        inner_groups, index = [], 0
        for g in groups:
            segs = []
            for p in g["params"]:
                o = self.offsets[index]
                a, b = max(lo, o), min(hi, o + p.numel())
                if a < b:
                    seg = nn.Parameter(flat[a:b], requires_grad=p.requires_grad)   # shares the memory
                    self.segments.append((index, a - o, b - o, seg))
                    segs.append(seg)
                index += 1
            self.segments_per_group.append(len(segs))
            inner_groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": segs})
        self.inner = build(inner_groups)    # a rank may have no segment in a group: torch allows empty groups
        self._grad_views: dict[int, list[torch.Tensor]] = {}

    def share(self) -> None:
        """Before an epoch's updates (collective over the node): the parameters move into the node's copy.
        Only the updates see it: whatever else changes parameters in place (weight averaging at an epoch's
        end, a model's set-up) does so on each rank's own memory, with no race between the ranks."""
        flat, node = self.gsum.parameters, self.gsum.node
        if node.Get_rank() == 0:          # every rank holds the same parameters: one copy per node
            for p, o in zip(self.params, self.offsets):
                flat[o:o + p.numel()].copy_(p.detach().reshape(-1))
        node.Barrier()
        for p, o in zip(self.params, self.offsets):
            p.data = flat[o:o + p.numel()].view_as(p)
        self.shared = True

    def unshare(self, collective: bool = True) -> None:
        """After an epoch's updates: each rank takes its own copy of the parameters; `collective`: and no rank
        goes on (to write the node's copy again) before every rank has taken it."""
        if not self.shared:
            return
        for p in self.params:
            p.data = p.data.clone()
        self.shared = False
        if collective:
            self.gsum.node.Barrier()

    @property
    def param_groups(self) -> list[dict]:
        return self.inner.param_groups

    def step_slice(self, total: torch.Tensor) -> None:
        """The update of this rank's slice, from `total` (the flat gradient sum; this rank's slice is final)."""
        views = self._grad_views.get(total.data_ptr())
        if views is None:
            views = [total[self.offsets[i] + a:self.offsets[i] + b] for i, a, b, _ in self.segments]
            self._grad_views[total.data_ptr()] = views
        for (_, _, _, seg), g in zip(self.segments, views):
            seg.grad = g
        self.inner.step()

    def state_dict(self) -> dict:
        """The whole optimiser's state_dict (collective over the node: every rank calls it at the same point)."""
        inner = self.inner.state_dict()
        mine = [(i, a, {k: v.clone() if torch.is_tensor(v) else v for k, v in inner["state"][j].items()})
                for j, (i, a, _, _) in enumerate(self.segments) if j in inner["state"]]
        pieces = sorted((item for part in self.gsum.node.allgather(mine) for item in part), key=lambda t: t[:2])
        state: dict[int, dict] = {}
        for i, _, st in pieces:      # segments of a parameter in order: per-element entries concatenate
            whole = state.setdefault(i, {k: [] if _per_element(v) else v for k, v in st.items()})
            for k, v in st.items():
                if _per_element(v):
                    whole[k].append(v)
        for i, whole in state.items():
            for k, v in whole.items():
                if isinstance(v, list):
                    whole[k] = torch.cat(v).view(self.params[i].shape)
        groups, index = [], 0
        for g, n in zip(inner["param_groups"], self.group_sizes):
            groups.append({**g, "params": list(range(index, index + n))})
            index += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, full: dict) -> None:
        """Take this rank's slice of the whole optimiser's state_dict (local; checked as torch checks one)."""
        sizes = [len(g["params"]) for g in full["param_groups"]]
        if sizes != self.group_sizes:
            raise ValueError(f"optimizer state: parameter groups of sizes {sizes}, this model has {self.group_sizes}")
        state = {}
        for j, (i, a, b, _) in enumerate(self.segments):
            st = full["state"].get(i)
            if st is not None:
                shape = self.params[i].shape
                state[j] = {k: v.reshape(-1)[a:b].clone() if torch.is_tensor(v) and v.shape == shape else v
                            for k, v in st.items()}
        groups, j = [], 0
        for g, n in zip(full["param_groups"], self.segments_per_group):
            groups.append({**g, "params": list(range(j, j + n))})
            j += n
        self.inner.load_state_dict({"state": state, "param_groups": groups})

    def close(self) -> None:
        """The parameters get their own memory back if an epoch stopped half way (local)."""
        self.unshare(collective=False)
        self.segments, self._grad_views = [], {}


def _per_element(v) -> bool:
    """A slice's share of a per-element state entry (momentum, Adam's moments), not a scalar (Adam's step)."""
    return torch.is_tensor(v) and v.dim() == 1
