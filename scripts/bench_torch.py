"""PyTorch reference rows for `npm run bench`: the same models, batch and optimizer as ringtrain.

Usage: python3 scripts/bench_torch.py '{"workload": "mnist-cnn", "batchSize": 32, "steps": 60,
        "windows": 5, "mode": "threads", "threads": 1}'    (mode "ddp" with "processes": N)
Prints one JSON line: {"median": samples/s, "min": ..., "max": ..., "rates": [every window]}.
"""
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def build(workload):
    """Keras layouts: 'valid' 3x3 convolutions, channels-last data transposed once to NCHW."""
    if workload == "mnist-mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), (1, 28, 28)
    channels, size = (1, 28) if workload == "mnist-cnn" else (3, 32)
    flat = 64 * 3 * 3 if size == 28 else 64 * 4 * 4
    model = nn.Sequential(
        nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    return model, (channels, size, size)


def timed_windows(job, model, batch, rank=0, world=1):
    torch.manual_seed(0)
    shape = build(job["workload"])[1]
    steps = job["steps"]
    x = torch.rand(steps, batch, *shape)
    y = torch.randint(0, 10, (steps, batch))
    # Keras' softmax + sparse CE equals CrossEntropyLoss on logits.
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def window():
        for i in range(steps):
            optimizer.zero_grad()
            loss_fn(model(x[i]), y[i]).backward()
            optimizer.step()

    window()  # warm-up
    rates = []
    for _ in range(job["windows"]):
        if world > 1:
            dist.barrier()
        start = time.perf_counter()
        window()
        if world > 1:
            dist.barrier()
        rates.append(steps * batch * world / (time.perf_counter() - start))
    return rates


def ddp_worker(rank, world, port, job, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = nn.parallel.DistributedDataParallel(build(job["workload"])[0])
    rates = timed_windows(job, model, job["batchSize"] // world, rank, world)
    if rank == 0:
        queue.put(rates)
    dist.destroy_process_group()


def main():
    job = json.loads(sys.argv[1])
    if job["mode"] == "ddp":
        world = job["processes"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        mp.spawn(ddp_worker, args=(world, port, job, queue), nprocs=world, join=True)
        rates = queue.get()
    else:
        torch.set_num_threads(job["threads"])
        rates = timed_windows(job, build(job["workload"])[0], job["batchSize"])
    print(json.dumps({"median": statistics.median(rates), "min": min(rates), "max": max(rates), "rates": rates, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
