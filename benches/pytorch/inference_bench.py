#!/usr/bin/env python3
"""PyTorch (CPU) side of Ember's Parquet inference benchmark (`benches/inference_bench.sh`).

Reads the Parquet rows the Ember side reads (`DIR/input`: `id` int64, `pixels`
fixed_size_list<uint8, 784>) with pyarrow, runs the same MLP 784-256-10 (weights from
`DIR/model.safetensors`, read with numpy: the safetensors header is JSON) under torch.no_grad in
batches of 512 on pixels scaled by 1/255, and writes `id` and `prediction`
(fixed_size_list<float32, 10>) with pyarrow to `DIR/out-torch`. Read, forward and write are all
timed. Prints one JSON line.

usage: inference_bench.py DIR [--threads N]
"""
import argparse
import glob
import json
import os
import struct
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtype=np.float32).reshape(info["shape"])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    w = load_safetensors(os.path.join(args.dir, "model.safetensors"))
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w["layers.0.weight"].copy()))
        model[0].bias.copy_(torch.from_numpy(w["layers.0.bias"].copy()))
        model[2].weight.copy_(torch.from_numpy(w["layers.1.weight"].copy()))
        model[2].bias.copy_(torch.from_numpy(w["layers.1.bias"].copy()))
    model.eval()
    out_dir = os.path.join(args.dir, "out-torch")
    os.makedirs(out_dir, exist_ok=True)
    files = sorted(glob.glob(os.path.join(args.dir, "input", "*.parquet")))
    start = time.perf_counter()
    rows = 0
    for i, path in enumerate(files):
        table = pq.read_table(path)
        ids = table.column("id").combine_chunks()
        px = table.column("pixels").combine_chunks()
        flat = px.values.to_numpy(zero_copy_only=False).reshape(-1, 784)
        preds = []
        with torch.no_grad():
            x = torch.from_numpy(flat)
            for s in range(0, x.shape[0], 512):
                preds.append(model(x[s:s + 512].to(torch.float32) / 255.0))
        pred = torch.cat(preds).numpy().reshape(-1)
        col = pa.FixedSizeListArray.from_arrays(pa.array(pred, type=pa.float32()), 10)
        pq.write_table(pa.table({"id": ids, "prediction": col}), os.path.join(out_dir, f"part-{i:05}.parquet"))
        rows += len(ids)
    secs = time.perf_counter() - start
    print(json.dumps({"system": "pytorch", "mode": "predict", "threads": args.threads, "rows": rows,
                      "seconds": secs, "rows_per_s": rows / secs}))


if __name__ == "__main__":
    main()
