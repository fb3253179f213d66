"""gloo's all-reduce for `npm run bench:allreduce`: torch.distributed.all_reduce (sum, float32,
in place) over the gloo backend, `nproc` processes on 127.0.0.1 (env:// rendezvous on a free
port), one thread each (as the DDP rows of `npm run bench`). For each size: `warmup` untimed
iterations, then iters[s] timed ones, each after a barrier, timed on every rank.

Usage: python3 scripts/bench_allreduce_torch.py '{"sizes": [4096, ...], "warmup": 3,
        "iters": [20, ...], "nproc": 2}'
Prints one JSON line: {"ranks": [per rank: per size: [seconds, ...]], "torch": version}.
"""
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank, job, port, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=job["nproc"])
    out = []
    for size, iters in zip(job["sizes"], job["iters"]):
        # Small values: repeated in-place sums double them, far from overflow in a few dozen rounds.
        buf = (torch.arange(size // 4, dtype=torch.float32) % 1000 + rank) * 1e-3
        times = []
        for i in range(job["warmup"] + iters):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(buf)
            seconds = time.perf_counter() - start
            if i >= job["warmup"]:
                times.append(seconds)
        out.append(times)
    queue.put((rank, out))
    dist.barrier()
    dist.destroy_process_group()


def main():
    job = json.loads(sys.argv[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(rank_main, args=(job, port, queue), nprocs=job["nproc"], join=True)
    ranks = dict(queue.get() for _ in range(job["nproc"]))
    print(json.dumps({"ranks": [ranks[r] for r in range(job["nproc"])], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
