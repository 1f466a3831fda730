"""Training on several processes started by torchrun: several GPUs, several machines, or CPU processes.

    torchrun --nproc_per_node=4 -m gandemo train DATA --out DIR ...

torchrun gives each process RANK, WORLD_SIZE and LOCAL_RANK in its environment; ``init()`` sees them
and joins the process group: NCCL when the processes train on CUDA GPUs (one each, cuda:LOCAL_RANK),
Gloo on CPUs. Without them (a plain ``python -m gandemo train``, the app) nothing here does anything:
``current()`` is a single process whose helpers hand back what they are given.

What the Trainer (gandemo.gan.train) takes from here, and why:

* ``wrap``: G and D in DistributedDataParallel for the passes whose gradients are averaged over the
  ranks. The Trainer keeps the plain modules for everything else, so checkpoints have no "module."
  prefixes and load on any number of ranks.
* ``mean``: each step's losses averaged over the ranks, so the skip-D rule, NaN/inf recovery, the
  health monitor and the automatic learning-rate drop see the same numbers and decide alike everywhere.
* ``any`` (a stop asked for on any rank), ``main_decides`` (rank 0's wall clock for checkpoint_minutes)
  and ``main_json`` (rank 0's learning-rate requests): one decision, taken by every rank at the same step.
* ``sync_buffers``: buffers that are equal on every rank after every step.

Buffers. Each rank's BatchNorm normalises with its own batch's statistics, as one process with the
same --batch-size does; after each step the running statistics are averaged over the ranks (the
statistics of the whole step's batch, which the EMA generator uses when it makes images) and every
other buffer (spectral norm's power-iteration vectors, batch counters) is taken from rank 0. So G, D
and the EMA of G are identical on every rank at every step boundary. SyncBatchNorm was not chosen: it
has no CPU (Gloo) implementation, it adds an all-reduce per BatchNorm layer per forward pass (slow
between machines), and it would change what a --batch-size means. DDP's own buffer broadcast was not
chosen either: it copies rank 0's buffers at the start of the next forward pass, after the EMA of G has
already copied each rank's own.

``GANDEMO_DDP_CHECK=FILE`` turns on a check (see ``ReplicaCheck``) that proves the above on a real run.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from ..device import pick_device
from ..errors import GandemoError

if TYPE_CHECKING:
    from .train import Trainer

__all__ = ["CHECK_ENV", "Dist", "ReplicaCheck", "backend_for", "current", "init", "launched_by_torchrun",
           "teardown"]

CHECK_ENV = "GANDEMO_DDP_CHECK"


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started (WORLD_SIZE > 1 and a RANK)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def backend_for(device: torch.device) -> str:
    """The collective backend for training on ``device``: NCCL between CUDA GPUs, Gloo between CPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass
class Dist:
    """This process's place among the training processes; a single process when ``world_size`` is 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # the device this rank trains on (None: not chosen here)
    backend: str = ""
    check: ReplicaCheck | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, writes previews, checkpoints and the card."""
        return self.rank == 0

    def _tensor(self, values: Any, dtype: torch.dtype) -> torch.Tensor:
        # NCCL moves only CUDA tensors; Gloo only CPU ones
        return torch.as_tensor(values, dtype=dtype).to(self.device or "cpu")

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of ``t`` over the ranks, added up in rank order on every rank: the same bits everywhere
        by construction (the decisions taken from it must not differ in the last bit)."""
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t)
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total

    # ----------------------------------------------------------------- networks
    def wrap(self, module: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged over the ranks), or itself when alone.

        DDP copies rank 0's parameters and buffers to every rank here; its per-forward buffer broadcast
        is off because ``sync_buffers`` keeps the buffers equal after each step (see the module's text).
        ``find_unused_parameters``: a network that uses only part of its weights in a step (a growing one)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False,
                                       find_unused_parameters=find_unused_parameters)

    @torch.no_grad()
    def sync_buffers(self, *modules: nn.Module) -> None:
        """BatchNorm's running statistics averaged over the ranks, every other buffer taken from rank 0,
        in one all-gather (float64 holds float32 values and counters exactly)."""
        if not self.active:
            return
        averaged: list[torch.Tensor] = []
        from_main: list[torch.Tensor] = []
        for module in modules:
            for m in module.modules():
                for name, buf in m.named_buffers(recurse=False):
                    if buf is None:
                        continue
                    stats = isinstance(m, nn.modules.batchnorm._BatchNorm) and name in ("running_mean", "running_var")
                    (averaged if stats else from_main).append(buf)
        bufs = averaged + from_main
        if not bufs:
            return
        flat = torch.cat([b.detach().reshape(-1).to(self.device or "cpu", torch.float64) for b in bufs])
        n_avg = sum(b.numel() for b in averaged)
        if not self.is_main:
            flat[n_avg:] = 0  # x + 0 + 0 ... is x exactly: rank 0's value
        flat = self._sum(flat)
        flat[:n_avg] /= self.world_size
        offset = 0
        for b in bufs:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()

    def decorrelate_rng(self, *material: object) -> None:
        """Give ranks 1.. their own stream of noise (z, DiffAugment, flips), derived from ``material``;
        rank 0 keeps its stream, so a run on one process is unchanged. The data order has its own
        generator, the same on every rank (each then takes its own slice)."""
        if self.active and not self.is_main:
            digest = hashlib.sha256(repr((*material, self.rank)).encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))

    # ----------------------------------------------------------------- decisions
    def mean(self, values: Sequence[torch.Tensor | float]) -> list[float]:
        """``values`` (scalars) averaged over the ranks, as floats that are the same on every rank."""
        if not self.active:
            return [float(v) for v in values]
        t = torch.stack([torch.as_tensor(v).detach().to(self.device or "cpu", torch.float64).reshape(())
                         for v in values])
        return (self._sum(t) / self.world_size).tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        if not self.active:
            return bool(flag)
        t = self._tensor([int(bool(flag))], torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def main_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. a decision by rank 0's wall clock)."""
        if not self.active:
            return bool(flag)
        t = self._tensor([int(bool(flag))], torch.int64)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def main_json(self, value: Any) -> Any:
        """Rank 0's ``value`` (anything JSON holds) on every rank. Sent as JSON text, never pickled."""
        if not self.active:
            return value
        data = json.dumps(value).encode() if self.is_main else b""
        size = self._tensor([len(data)], torch.int64)
        dist.broadcast(size, src=0)
        payload = self._tensor(list(data), torch.uint8) if self.is_main else self._tensor(
            [0] * int(size.item()), torch.uint8)
        if int(size.item()):
            dist.broadcast(payload, src=0)
        return json.loads(bytes(payload.cpu().tolist()).decode())

    def stop_on_signals(self) -> threading.Event | None:
        """Under torchrun: an event that Ctrl-C (SIGINT) or SIGTERM sets, so the training loop stops every
        rank at the same step (``any``) and rank 0 saves, instead of each rank dying mid-step. None when
        alone: the CLI's KeyboardInterrupt path stays as it is. Further signals change nothing: Ctrl-C reaches
        each rank twice (from the terminal, then forwarded by torchrun), and torchrun kills what has not
        ended 30 s after forwarding it."""
        if not self.active:
            return None
        event = threading.Event()

        def handler(signum: int, frame: object) -> None:  # noqa: ARG001 - the signal module's signature
            event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
        return event

    # ----------------------------------------------------------------- the check
    def verify(self, trainer: Trainer, final: bool = False) -> None:
        """The replica check after a step (and once after the final save), when GANDEMO_DDP_CHECK is set."""
        if self.check is not None:
            self.check.record(self, trainer, final)


_SINGLE = Dist()
_current = _SINGLE


def current() -> Dist:
    """This process's Dist: the one ``init()`` made, or a single process."""
    return _current


def init(device: str | torch.device | None = None) -> Dist:
    """Join torchrun's process group when this process was started by it; else a single process.

    ``device`` (like --device; default: the best available) picks the kind: CUDA ranks train on
    cuda:LOCAL_RANK with NCCL, CPU ranks with Gloo."""
    global _current
    if not launched_by_torchrun():
        return _current
    if _current.active:
        return _current
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    kind = torch.device(device) if device else pick_device()
    if kind.type == "cuda":
        gpus = torch.cuda.device_count()
        if local >= gpus:
            raise GandemoError(f"torchrun started process {local} on a machine with {gpus} GPU(s); "
                               f"use --nproc_per_node={gpus} or fewer.")
        chosen = torch.device("cuda", local)
        torch.cuda.set_device(chosen)
    elif kind.type == "cpu":
        chosen = torch.device("cpu")
    else:
        raise GandemoError(f"Training on several processes needs CUDA GPUs or CPUs; {kind.type} is not supported.")
    backend = backend_for(chosen)
    dist.init_process_group(backend, device_id=chosen if chosen.type == "cuda" else None)
    path = os.environ.get(CHECK_ENV)
    _current = Dist(rank, world, local, chosen, backend)
    _current.check = ReplicaCheck(Path(path)) if path else None
    return _current


def teardown(finished: bool = False) -> None:
    """Leave the process group (if this process joined one).

    First the objects that still hold the group (the DistributedDataParallel wrappers of a finished
    Trainer, often kept alive only by reference cycles) are collected while the interpreter is whole:
    left to interpreter shutdown, Gloo's threads were torn down mid-flight and a rank died with
    "terminate called without an active exception" (SIGABRT) after a run had finished. ``finished``
    (every rank ended the run normally): also wait at a barrier, so that no rank closes its connections
    while another is still in its last collective. Not after an error: the other ranks may be inside a
    different collective, and a barrier would then hang until the group's timeout."""
    global _current
    if _current.active and dist.is_initialized():
        gc.collect()
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    _current = _SINGLE


# --------------------------------------------------------------------------------------------- the check
_WRITE_EVENTS = ("open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "shutil.rmtree",
                 "tempfile.mkdtemp", "tempfile.mkstemp")


class ReplicaCheck:
    """``GANDEMO_DDP_CHECK=FILE``: proof, on a real run, that the ranks stay one model.

    After every step each rank hashes its G, D and EMA of G (parameters and buffers, SHA-256 of the
    bytes), lists the images of its real batch and counts the files it wrote in or next to the run
    folder (Python's audit events: open for writing, mkdir, rename, remove, temporary folders). The
    rows are gathered; rank 0 appends them to FILE as one JSON line per step and stops the run with an
    error as soon as two ranks' weights differ. A debugging aid (it costs a hash of every weight per step)."""

    def __init__(self, path: Path):
        self.path = path
        self.writes = 0
        self.watch: tuple[str, str] | None = None
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple) -> None:
        if self.watch is None or event not in _WRITE_EVENTS or not args:
            return
        if event == "open":
            mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(
                (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if not writing:
                return
        target = args[0]
        if not isinstance(target, (str, bytes, os.PathLike)):
            return
        where = os.path.abspath(os.fsdecode(target))
        run, siblings = self.watch
        if where == run or where.startswith((run + os.sep, siblings)):
            self.writes += 1

    @staticmethod
    def digest(module: nn.Module) -> int:
        h = hashlib.sha256()
        for name, value in module.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return int.from_bytes(h.digest()[:8], "little", signed=True)

    def record(self, d: Dist, trainer: Trainer, final: bool) -> None:
        out = os.path.abspath(trainer.out_dir)
        # the run folder, and the temporary ".name.*" folders a save writes next to it
        self.watch = (out, os.path.join(os.path.dirname(out), "." + os.path.basename(out) + "."))
        batch = getattr(trainer, "last_batch", torch.empty(0, dtype=torch.long))
        row = [trainer.step, int(final), self.digest(trainer.G), self.digest(trainer.D), self.digest(trainer.G_ema),
               self.writes, trainer.skipped_d, batch.numel(), *batch.tolist()]
        width = d._tensor([len(row)], torch.int64)
        dist.all_reduce(width, op=dist.ReduceOp.MAX)
        mine = d._tensor(row + [0] * (int(width.item()) - len(row)), torch.int64)
        rows = [torch.empty_like(mine) for _ in range(d.world_size)]
        dist.all_gather(rows, mine)
        if not d.is_main:
            return
        ranks = []
        for r in rows:
            values = r.cpu().tolist()
            n = values[7]
            ranks.append({"step": values[0], "g": values[2], "d": values[3], "g_ema": values[4], "writes": values[5],
                          "skipped_d": values[6], "batch": values[8:8 + n]})
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": trainer.step, "final": final, "ranks": ranks}) + "\n")
        keys = ("step", "g", "d", "g_ema", "skipped_d")
        if any(rank[k] != ranks[0][k] for rank in ranks for k in keys):
            raise RuntimeError(f"{CHECK_ENV}: the ranks differ after step {trainer.step}: {ranks}")
