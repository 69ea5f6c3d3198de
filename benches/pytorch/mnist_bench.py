#!/usr/bin/env python3
"""PyTorch (CPU) side of Ember's MNIST training benchmark.

Trains the same networks as `ml/examples/ml_bench.rs` on the same work: MLP 784-256-10 (ReLU) and
LeNet (conv 5x5x20, max pool 2, conv 5x5x50, max pool 2, dense 500, dense 10; ReLU), softmax
cross-entropy, batch 128, SGD with momentum 0.9 and lr 0.01, over the 60,000 training images held
in memory as float32 in [0, 1]. Only the training loop is timed (one shuffle per epoch included).
Prints one JSON object per model with the same keys as the Ember side.

usage: mnist_bench.py [MNIST_DIR] [--model mlp|lenet|all] [--epochs N] [--threads N]
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def flops_per_example(model):
    if model == "mlp":
        fwd = 2.0 * (784 * 256 + 256 * 10)
        return 2 * fwd + 2.0 * 256 * 10
    conv1 = 2.0 * 20 * 25 * 576
    conv2 = 2.0 * 50 * 500 * 64
    d1 = 2.0 * 800 * 500
    d2 = 2.0 * 500 * 10
    fwd = conv1 + conv2 + d1 + d2
    return 2 * fwd + (conv2 + d1 + d2)


def network(model):
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="../shared/data/mnist")
    ap.add_argument("--model", default="all", choices=["mlp", "lenet", "all"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = read_idx(os.path.join(args.dir, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(args.dir, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x = torch.from_numpy(x).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(y)
    models = ["mlp", "lenet"] if args.model == "all" else [args.model]
    for m in models:
        net = network(m)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        best = float("inf")
        loss = None
        for epoch in range(args.epochs):
            g = torch.Generator().manual_seed(epoch)
            start = time.perf_counter()
            perm = torch.randperm(x.shape[0], generator=g)
            for i in range(0, x.shape[0], 128):
                idx = perm[i:i + 128]
                xb, yb = x[idx], y[idx]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(xb), yb)
                loss.backward()
                opt.step()
            best = min(best, time.perf_counter() - start)
        n = x.shape[0]
        flops = flops_per_example(m) * n
        print(json.dumps({
            "framework": "pytorch", "model": m, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "examples": n, "seconds": best,
            "samples_per_s": n / best, "gflop_per_epoch": flops / 1e9,
            "gflops": flops / best / 1e9, "final_loss": float(loss),
        }), flush=True)


if __name__ == "__main__":
    main()
