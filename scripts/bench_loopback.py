"""The loopback ceiling with the least user-space work, for `npm run bench:allreduce`: two
processes, each sending `bytes` to the other on one TCP connection (sendall of a fixed 4 MiB
buffer) while receiving `bytes` from the other on a second one (recv_into a fixed 4 MiB buffer,
in a second thread; socket calls release the GIL), at the same time. One warm-up repetition,
then `reps` timed; a repetition's time is the slower process's.

Usage: python3 scripts/bench_loopback.py '{"bytes": 268435456, "reps": 3}'
Prints one JSON line: {"rates": [bytes/s per direction, ...]}.
"""
import json
import multiprocessing as mp
import socket
import sys
import threading
import time

CHUNK = 4 << 20


def pump(out, inc, nbytes):
    data = memoryview(bytearray(CHUNK))
    into = memoryview(bytearray(CHUNK))

    def receive():
        got = 0
        while got < nbytes:
            n = inc.recv_into(into, min(CHUNK, nbytes - got))
            if n == 0:
                raise ConnectionError("peer closed")
            got += n

    reader = threading.Thread(target=receive)
    reader.start()
    sent = 0
    while sent < nbytes:
        piece = min(CHUNK, nbytes - sent)
        out.sendall(data[:piece])
        sent += piece
    reader.join()


def rank_main(rank, port, nbytes, reps, go, done):
    if rank == 0:
        server = socket.create_server(("127.0.0.1", port))
        conns = {}
        for _ in range(2):
            conn, _ = server.accept()
            conns[conn.recv(1)] = conn
        inc, out = conns[b"A"], conns[b"B"]
    else:
        for attempt in range(100):
            try:
                out = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        out.sendall(b"A")
        inc = socket.create_connection(("127.0.0.1", port))
        inc.sendall(b"B")
    for s in (out, inc):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(reps + 1):
        go.wait()
        start = time.perf_counter()
        pump(out, inc, nbytes)
        done.put((rank, time.perf_counter() - start))
        go.wait()  # everyone done before the next repetition


def main():
    job = json.loads(sys.argv[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("fork")
    go = ctx.Barrier(3)
    done = ctx.Queue()
    procs = [ctx.Process(target=rank_main, args=(r, port, job["bytes"], job["reps"], go, done)) for r in range(2)]
    procs[0].start()
    time.sleep(0.3)  # rank 0 listening
    procs[1].start()
    rates = []
    for rep in range(job["reps"] + 1):
        go.wait()
        seconds = max(done.get()[1] for _ in range(2))
        go.wait()
        if rep > 0:
            rates.append(job["bytes"] / seconds)
    for p in procs:
        p.join()
    print(json.dumps({"rates": rates}))


if __name__ == "__main__":
    main()
