"""The per-step sum of the ranks' gradients for data-parallel training: one flat buffer per step.

`GradientSum` sums a flat tensor over the ranks (shared memory between the ranks of a node, MPI between
nodes, torch.distributed for GPU tensors); `allreduce_sum_inplace` is the message-passing sum it falls back
to; `GradientSync` is the trainer's side: the parameters' .grad are views of the flat buffers, and on a node
the optimiser step is taken slice by slice inside the sum (`ShardedOptimizer`).

Costs of the 1600-400 RBM (641,600 floats) on 2 ranks of one node, one thread each (measured on a shared
2-core machine): a message-passing all-reduce of the buffer 1.5-3.5 ms; the shared-memory sum 0.5-0.65 ms
per step (each rank reads N * (1/N) of the data whatever the rank count N; a CD step writes its gradient
straight into the shared part). Opening the shared windows and freeing them costs 4-5 ms of CPU per
training (communicator splits, first touch of fresh shared pages; 40-60 ms of wall time on a loaded
machine), as much as tens of steps: the windows of a finished training are kept for the next training over
the same ranks (`GradientSum.pooled`, `release`), which then pays ~0.7 ms.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hpc_rg import parallel
from hpc_rg.learn.sharded_optimizer import ShardedOptimizer
from hpc_rg.parallel import World, deal

BUCKET_BYTES = 8 << 20     # a bucket per this many bytes: one Iallreduce each, all in flight at once
PAGE = 4096


def allreduce_sum_inplace(world: World, flat: torch.Tensor, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Sum a flat, contiguous torch tensor over the ranks, in place.

    Over MPI when the world has a communicator and the tensor lives in host memory: the numpy view of the
    tensor's storage is handed to MPI (no copy), split into buckets reduced by non-blocking Iallreduce calls
    that are all in flight together. Otherwise (no mpi4py, or a GPU tensor) through torch.distributed (gloo
    on CPU, nccl on GPU), which must then be initialised (`parallel.init_torch_distributed`)."""
    if world.size == 1:
        return
    if world.comm is not None and flat.device.type == "cpu":
        MPI = parallel.mpi()
        buf = flat.detach().numpy()       # shares memory with the tensor
        step = max(1, bucket_bytes // max(buf.itemsize, 1))
        reqs = [world.comm.Iallreduce(MPI.IN_PLACE, buf[lo:lo + step], op=MPI.SUM)
                for lo in range(0, len(buf), step)]
        MPI.Request.Waitall(reqs)
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        raise RuntimeError("a multi-rank gradient reduction needs mpi4py (CPU tensors) or torch.distributed")
    dist.all_reduce(flat)


def _pages(nbytes: int) -> int:
    return max(PAGE, -(-nbytes // PAGE) * PAGE)


# Shared-memory sums kept between trainings, one per set of ranks (and pretend node size): {key: GradientSum}
_POOL: dict[tuple, "GradientSum"] = {}


class GradientSum:
    """The per-step sum of a flat gradient over the ranks of `world`.

    A rank writes its part into `contribution` (a flat tensor), then `reduce()` returns a flat tensor holding
    the sum over all ranks (the same bits on every rank), valid until the next-but-one `reduce()`.

    On the CPU with mpi4py, ranks that share a node sum through MPI shared memory instead of sending
    messages: each rank's `contribution` lives in a shared window; after a node barrier, local rank i sums
    slice i of all the node's contributions (in local-rank order) into a shared total, the ranks with the
    same local rank on the other nodes all-reduce that slice over MPI (skipped on one node), and after a
    second barrier every rank reads the total. There are two totals, used in turn: a rank writes its slice of
    step k+1's total only after every rank has reached step k+1's first barrier, i.e. has finished reading
    step k's total (its optimiser step), so two barriers per step suffice and nobody copies the total out.
    Otherwise (no communicator, a GPU tensor, or nodes holding different numbers of ranks) `contribution`
    is the result and `allreduce_sum_inplace` sums it. `close()` frees the windows (collective)."""

    def __init__(self, world: World, numel: int, dtype, device, ranks_per_node: int | None = None):
        """`ranks_per_node` (tests): treat each run of that many consecutive ranks as a node, to exercise
        the path between nodes on one machine; None: the machine's real nodes."""
        self.world = world
        self._wins: list = []
        self.shared = False
        self.capacity = 0                 # bytes of each shared buffer
        if world.size > 1 and world.comm is not None and torch.device(device).type == "cpu":
            self._open_shared(_pages(int(numel) * torch.empty(0, dtype=dtype).element_size()), ranks_per_node)
        if self.shared:
            self.bind(numel, dtype)
        else:
            self.numel, self.dtype = int(numel), dtype
            self.contribution = torch.zeros(self.numel, dtype=dtype, device=device)
            self.results = (self.contribution,)

    @classmethod
    def pooled(cls, world: World, numel: int, dtype, device, ranks_per_node: int | None = None) -> "GradientSum":
        """A sum for `numel` values over `world`, reusing the shared windows a finished training over the same
        ranks left (`give_back`) when they are large enough (collective: every rank of `world` calls it at
        the same point; the ranks' pools agree because every training over a set of ranks involves all of
        them). A sum that is still in use is never handed out twice."""
        if world.size == 1 or world.comm is None or torch.device(device).type != "cpu":
            return cls(world, numel, dtype, device, ranks_per_node)
        MPI = parallel.mpi()
        key = (tuple(world.comm.allgather(MPI.COMM_WORLD.Get_rank())), ranks_per_node)
        kept = _POOL.get(key)
        need = _pages(int(numel) * torch.empty(0, dtype=dtype).element_size())
        if kept is not None and not kept.in_use and kept.shared and kept.capacity >= need:
            kept.bind(numel, dtype)
        else:
            if kept is not None and not kept.in_use:
                kept.close()              # too small: the same ranks free it together
            kept = cls(world, numel, dtype, device, ranks_per_node)
            if not kept.shared:
                return kept
            if key not in _POOL or not _POOL[key].in_use:
                _POOL[key] = kept
        kept.in_use = True
        return kept

    def give_back(self) -> None:
        """The training is done with this sum (local): a pooled one waits for the next training, another is
        freed later by `close`. Tensors obtained from it must no longer be used."""
        self.in_use = False

    def _open_shared(self, nbytes: int, ranks_per_node) -> None:
        MPI = parallel.mpi()
        comm = self.world.comm
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank()) if ranks_per_node is None \
            else comm.Split(comm.Get_rank() // ranks_per_node, comm.Get_rank())
        sizes = set(comm.allgather(node.Get_size()))      # collective: asked on every rank
        if sizes == {1} or len(sizes) != 1:
            node.Free()   # one rank per node, or uneven nodes: message passing
            return
        self.node = node
        self.cross = comm.Split(node.Get_rank(), comm.Get_rank())   # one rank per node, same local rank
        parts = MPI.Win.Allocate_shared(nbytes, 1, comm=node)
        # two totals and the node's one copy of the parameters (`ShardedOptimizer`)
        totals = MPI.Win.Allocate_shared(3 * nbytes if node.Get_rank() == 0 else 0, 1, comm=node)
        self._wins = [parts, totals]
        self._part_mem = [parts.Shared_query(r)[0] for r in range(node.Get_size())]
        whole = memoryview(totals.Shared_query(0)[0])
        self._total_mem = [whole[:nbytes], whole[nbytes:2 * nbytes]]
        self._param_mem = whole[2 * nbytes:3 * nbytes]
        self.capacity, self.shared, self.in_use = nbytes, True, False
        node.Barrier()

    def bind(self, numel: int, dtype) -> None:
        """View the shared buffers as `numel` values of `dtype` (local; the contribution is zeroed)."""
        self.numel, self.dtype = int(numel), dtype
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype

        def tensor(mem):
            return torch.from_numpy(np.frombuffer(mem, np_dtype, count=self.numel))
        self._parts = [tensor(m) for m in self._part_mem]
        self.results = tuple(tensor(m) for m in self._total_mem)
        self.parameters = tensor(self._param_mem)     # the node's shared copy (used by `ShardedOptimizer`)
        self.contribution = self._parts[self.node.Get_rank()]
        self.contribution.zero_()
        mine = deal(self.numel, self.node.Get_size(), self.node.Get_rank())
        self.slice = slice(mine.start, mine.stop)   # this rank's part of the sum
        self._turn = 0

    @property
    def result(self) -> torch.Tensor:
        """The latest sum."""
        return self.results[self._turn ^ 1] if self.shared else self.results[0]

    def reduce(self, step=None) -> torch.Tensor:
        """Sum `contribution` over the ranks; returns the sum (one of `results`). `step(total)` (shared
        memory only) runs once this rank's slice of `total` is summed, before the ranks meet again: the
        sharded optimiser's update of the same slice of `parameters`."""
        if not self.shared:
            allreduce_sum_inplace(self.world, self.contribution)
            return self.contribution
        total = self.results[self._turn]
        self._turn ^= 1
        sl, parts = self.slice, self._parts
        self.node.Barrier()                      # every contribution written (and step k-1's total read)
        out = total[sl]
        torch.add(parts[0][sl], parts[1][sl], out=out)
        for part in parts[2:]:
            out.add_(part[sl])
        if self.cross.Get_size() > 1:
            MPI = parallel.mpi()
            self.cross.Allreduce(MPI.IN_PLACE, out.numpy(), op=MPI.SUM)
        if step is not None:
            step(total)
        self.node.Barrier()            # every slice summed (and updated), nobody reads contributions now
        return total

    def close(self) -> None:
        """Free the shared windows and communicators (collective over the world; idempotent)."""
        for key, kept in list(_POOL.items()):
            if kept is self:
                del _POOL[key]
        if not self.shared:
            return
        self._parts = self.results = self.contribution = self.parameters = None
        self._part_mem = self._total_mem = self._param_mem = None
        for win in self._wins:
            win.Free()
        self.cross.Free()
        self.node.Free()
        self._wins, self.shared = [], False


def release(world: World) -> None:
    """Free the shared windows kept for trainings over the ranks of `world` (collective over `world`)."""
    if world.size == 1 or world.comm is None:
        return
    MPI = parallel.mpi()
    members = tuple(world.comm.allgather(MPI.COMM_WORLD.Get_rank()))
    for key in [k for k in _POOL if k[0] == members]:
        _POOL[key].close()


class GradientSync:
    """The trainer's gradient sum: once per step, over one flat buffer (`GradientSum.pooled`).

    Each rank's part of the sum is a flat buffer and the .grad are views of it (`attach`): autograd
    accumulates straight into it, tasks that write .grad themselves (contrastive divergence) overwrite it in
    place; a .grad a task replaced by another tensor is copied in. After `reduce` the .grad are views of the
    sum."""

    def __init__(self, params: list[nn.Parameter], world: World):
        self.params, self.world = params, world
        total = sum(p.numel() for p in params)
        self.sum = GradientSum.pooled(world, total, params[0].dtype, params[0].device)
        self.parts = self._split(self.sum.contribution)
        self.views = {r.data_ptr(): self._split(r) for r in self.sum.results}
        self.sharded: ShardedOptimizer | None = None

    def _split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, offset = [], 0
        for p in self.params:
            views.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return views

    def attach(self, zero: bool = True) -> None:
        """Before a step: every .grad becomes a view of this rank's part of the sum, zeroed when `zero`
        (backward accumulates there; a rank without rows contributes the zeros). Without `zero` the task must
        overwrite every .grad (a CD step: 0.1 ms saved on the 1600-400 RBM)."""
        if zero:
            self.sum.contribution.zero_()
        for p, part in zip(self.params, self.parts):
            p.grad = part

    def optimizer(self, groups: list[dict], build):
        """The optimiser `build(groups)` would make over the parameters, or its `ShardedOptimizer` when the
        sum goes through shared memory (each rank then updates its slice of the parameters, which move into
        the node's shared memory until `close`). Collective."""
        if not self.sum.shared:
            return build(groups)
        self.sharded = ShardedOptimizer(self.params, groups, self.sum, build)
        return self.sharded

    def share_parameters(self) -> None:
        """Before an epoch's updates (collective): a sharded optimiser's parameters move to the node's copy."""
        if self.sharded is not None:
            self.sharded.share()

    def own_parameters(self) -> None:
        """After an epoch's updates (collective): each rank's parameters in its own memory again."""
        if self.sharded is not None:
            self.sharded.unshare()

    def reduce(self, opt=None) -> None:
        """Sum the gradients over the ranks (each already weighted by the rank's share of the batch), then
        take `opt`'s step (`optimizer`'s: sharded, each rank its slice, inside the sum)."""
        for p, part in zip(self.params, self.parts):
            g = p.grad
            if g is None:
                part.zero_()
            elif g.data_ptr() != part.data_ptr():
                part.copy_(g)
        sharded = opt is not None and opt is self.sharded
        result = self.sum.reduce(opt.step_slice if sharded else None)
        for p, v in zip(self.params, self.views[result.data_ptr()]):
            p.grad = v
        if opt is not None and not sharded:
            opt.step()

    def close(self, collective: bool = True) -> None:
        """After the last step: the .grad become copies in this rank's own memory (the buffers are reused by
        the next training over these ranks) and the sum goes back to the pool (local). A sum outside the
        pool (opened while the pooled one was in use) is freed when every rank closes together
        (`collective`), else left to MPI's finalisation (an exception on some ranks)."""
        for p in self.params:
            if p.grad is not None:
                p.grad = p.grad.clone()
        if self.sharded is not None:
            self.sharded.close()      # the parameters back in their own memory (a training stopped mid-epoch)
        self.parts, self.views = [], {}
        self.sum.give_back()
        if collective and self.sum not in _POOL.values():
            self.sum.close()

