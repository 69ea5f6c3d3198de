#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (CPU, gloo) side of Ember's data-parallel MNIST benchmark.

The peer of `mnist_distributed --master dp` (see `benches/dp_bench.sh`): W processes (default 2)
x 1 thread each (OMP_NUM_THREADS=1, torch.set_num_threads(1)), spawned with
torch.multiprocessing on 127.0.0.1 (gloo over loopback only: GLOO_SOCKET_IFNAME=lo). The same
networks and work as `mnist_bench.py`: MLP 784-256-10 (ReLU) and LeNet (conv 5x5x20, max pool 2,
conv 5x5x50, max pool 2, dense 500, dense 10; ReLU), softmax cross-entropy, SGD with momentum
0.9 and lr 0.01, a TOTAL batch of 128 (128 / W per process), over the 60,000 training images held
in memory as float32 in [0, 1]. Each process reads its DistributedSampler shard (one permutation
per epoch from a fixed seed, rank r takes positions r, r + W, r + 2W, ...). Only the training
loop is timed (the epoch's permutation included); the figure is the slowest rank's, the best
epoch's when --epochs > 1. After training rank 0 measures the accuracy on the 10,000 test images.

Communication share (`comm_share`). DDP starts a bucket's allreduce from a backward hook as soon
as that bucket's gradients are ready, so communication overlaps the rest of the backward pass
(for these small models there is little to overlap: the MLP's 0.8 MB of gradients fill a single
bucket, LeNet's 1.7 MB two). The time an allreduce is in flight is therefore not the time it
costs. `comm_share` is the cost: 1 - (no-sync step time) / (step time), where the no-sync step
time is measured after training with the same model, batches and processes inside
`DistributedDataParallel.no_sync()` (forward, backward and optimizer step, no allreduce; both
ranks run it at the same time, so the CPU contention of two processes on the machine is the same
in both). It counts everything synchronising costs: the exposed allreduce, the gloo thread's CPU
time taken from the compute thread, and waiting for the slower rank. It is clamped at 0; the raw
step times are in `step_ms` and `nosync_step_ms`. For reference, a DDP communication hook wraps
the default allreduce hook and records when each bucket's allreduce starts and its future
completes; `allreduce_inflight_share` is the union of those intervals over the epoch's time.
It overstates the cost where the allreduce overlaps backward and can understate it where a rank
waits for its peer before its first bucket is ready.

Communication hooks (`--hook`, for the gradient-sharing benchmark `benches/sharing_bench.sh`):
`allreduce` (the default, timed as above), `fp16` (`default_hooks.fp16_compress_hook`: gradients
cast to half precision for the allreduce) and `powersgd` (`powerSGD_hook.powerSGD_hook`, rank 1,
`start_powerSGD_iter` 10, PyTorch's defaults otherwise). `bytes_per_step` is what each rank sends
per step in the allreduces, computed from the tensor sizes for a ring of W ranks (2 (W-1)/W of
each allreduced buffer): 4 bytes a gradient for allreduce, 2 for fp16, and for PowerSGD the P and
Q factors of every matrix it compresses plus the tensors it leaves uncompressed (1-D ones, and
matrices that would not shrink by PyTorch's `min_compression_rate` 2); after the first 10 steps.

usage: ddp_bench.py MNIST_DIR --model mlp|lenet|all [--epochs N] [--workers 2] [--threads 1]
                    [--nosync-steps 200] [--seed 0] [--hook allreduce|fp16|powersgd] [--lr 0.01]
Rank 0 prints one JSON object per model on stdout.
"""
import argparse
import json
import os
import socket
import sys
import time

# Before torch is imported, here and (inherited) in the spawned processes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks  # noqa: E402
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from torch.utils.data import DistributedSampler  # noqa: E402

# The same data reader and models as the single-process benchmark beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_bench import network, read_idx  # noqa: E402

TOTAL_BATCH = 128


def load(directory, prefix):
    x = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)


class _Len:
    """What DistributedSampler needs of a data set: its length."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


class TimedAllreduce:
    """DDP communication-hook state: the default allreduce, with (start, done) per bucket."""

    def __init__(self):
        self.process_group = None
        self.intervals = []
        self.buckets = set()

    @staticmethod
    def hook(state, bucket):
        t0 = time.perf_counter()
        state.buckets.add(bucket.index())
        fut = default_hooks.allreduce_hook(None, bucket)

        def done(f):
            state.intervals.append((t0, time.perf_counter()))
            return f.value()

        return fut.then(done)

    def inflight_seconds(self):
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.intervals):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total


def max_over_ranks(value):
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def bytes_per_step(net, hook, world):
    """What one rank sends per step in the allreduces of `hook` (see the module docstring)."""
    ring = 2.0 * (world - 1) / world
    values = 0
    for p in net.parameters():
        n = p.numel()
        if hook == "powersgd" and p.dim() > 1:
            rows, cols = p.shape[0], n // p.shape[0]
            factors = rows + cols  # rank 1: P is rows x 1, Q is cols x 1
            values += factors if n >= 2 * factors else n
        else:
            values += n
    width = 2 if hook == "fp16" else 4
    return ring * width * values


def run_model(m, args, rank, world, x, y, test):
    per_rank = TOTAL_BATCH // world
    torch.manual_seed(1)  # the same initial weights everywhere (DDP broadcasts rank 0's anyway)
    net = DDP(network(m))
    timer = TimedAllreduce()
    if args.hook == "allreduce":
        net.register_comm_hook(timer, TimedAllreduce.hook)
    elif args.hook == "fp16":
        net.register_comm_hook(None, default_hooks.fp16_compress_hook)
    else:
        state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=1,
                                            start_powerSGD_iter=10)
        net.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    sampler = DistributedSampler(_Len(x.shape[0]), num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=False)
    best = None
    loss = None
    for epoch in range(args.epochs):
        timer.intervals.clear()
        dist.barrier()
        start = time.perf_counter()
        sampler.set_epoch(epoch)
        shard = torch.tensor(list(iter(sampler)), dtype=torch.int64)
        steps = 0
        for i in range(0, shard.shape[0], per_rank):
            idx = shard[i:i + per_rank]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            steps += 1
        elapsed = max_over_ranks(time.perf_counter() - start)
        inflight = max_over_ranks(timer.inflight_seconds())
        if best is None or elapsed < best[0]:
            best = (elapsed, steps, inflight)
    seconds, steps, inflight = best

    # Test accuracy on the trained replica (all replicas hold the same weights).
    accuracy = None
    if rank == 0:
        tx, ty = test
        net.eval()
        with torch.no_grad():
            correct = sum(int((net.module(tx[i:i + 1000]).argmax(1) == ty[i:i + 1000]).sum())
                          for i in range(0, tx.shape[0], 1000))
        accuracy = correct / tx.shape[0]
        net.train()
    dist.barrier()

    # The same steps without synchronisation (see the module docstring); the replicas diverge
    # from here, which no longer matters.
    nosync_ms = None
    if args.nosync_steps > 0:
        batches = [shard[i:i + per_rank] for i in range(0, shard.shape[0] - per_rank + 1, per_rank)]
        warmup = 5
        with net.no_sync():
            for k in range(warmup + args.nosync_steps):
                if k == warmup:
                    dist.barrier()
                    t0 = time.perf_counter()
                idx = batches[k % len(batches)]
                opt.zero_grad(set_to_none=True)
                loss_fn(net(x[idx]), y[idx]).backward()
                opt.step()
            nosync = max_over_ranks(time.perf_counter() - t0)
        nosync_ms = 1000.0 * nosync / args.nosync_steps
    step_ms = 1000.0 * seconds / steps
    comm_share = None if nosync_ms is None else max(0.0, 1.0 - nosync_ms / step_ms)

    if rank == 0:
        n = x.shape[0]
        print(json.dumps({
            "framework": "pytorch-ddp", "model": m, "workers": world,
            "samples_per_s": n / seconds, "seconds": seconds, "comm_share": comm_share,
            "test_accuracy": accuracy, "torch": torch.__version__,
            "threads_per_worker": torch.get_num_threads(), "backend": "gloo",
            "batch": TOTAL_BATCH, "batch_per_worker": per_rank, "examples": n,
            "epochs": args.epochs, "steps_per_epoch": steps, "step_ms": step_ms,
            "nosync_step_ms": nosync_ms, "nosync_steps": args.nosync_steps,
            "allreduce_inflight_share": inflight / seconds, "buckets": len(timer.buckets),
            "final_loss": float(loss), "hook": args.hook, "lr": args.lr,
            "bytes_per_step": bytes_per_step(net.module, args.hook, world),
        }), flush=True)


def worker(rank, args, port):
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=args.workers)
    try:
        x, y = load(args.dir, "train")
        test = load(args.dir, "t10k") if rank == 0 else None
        models = ["mlp", "lenet"] if args.model == "all" else [args.model]
        for m in models:
            run_model(m, args, rank, args.workers, x, y, test)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default="data/mnist")
    ap.add_argument("--model", default="all", choices=["mlp", "lenet", "all"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--nosync-steps", type=int, default=200,
                    help="steps timed without allreduce for comm_share (0: skip, comm_share null)")
    ap.add_argument("--seed", type=int, default=0, help="DistributedSampler seed")
    ap.add_argument("--hook", default="allreduce", choices=["allreduce", "fp16", "powersgd"],
                    help="DDP communication hook")
    ap.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    args = ap.parse_args()
    if TOTAL_BATCH % args.workers:
        sys.exit(f"ddp_bench: the total batch {TOTAL_BATCH} does not split over {args.workers} workers")
    mp.spawn(worker, args=(args, free_port()), nprocs=args.workers, join=True)


if __name__ == "__main__":
    main()
