#!/usr/bin/env python3
"""Slow clients against a separate `consultroom serve` process (issue #10, docs/benchmarks.md).

Starts the server under `prlimit --nofile=SOFT:HARD`, keeps N connections from 127.0.0.2-12 open
(a third send half a header, a third a header and half a body, a third nothing; each one closed
by the server is opened again), and meanwhile measures `/healthz` on the admin listener and a
public request (`GET /api/v1/openapi.json`), each on a new connection every 100 ms.

Usage: loadtest/slow-clients.py target/debug/consultroom [--conns 1100] [--secs 30]
       [--nofile SOFT:HARD]   (default 1024:<this shell's hard limit>)
Loopback only.
"""

import argparse
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HALF_HEADER = b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slo"
HALF_BODY = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n"
             b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":")


def get(addr, path, timeout=2.0):
    """One GET on a new connection; (status or None, seconds)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data else None
    except OSError:
        status = None
    return status, time.monotonic() - t0


def attacker(i, addr):
    s = socket.socket()
    s.setblocking(False)
    s.bind((f"127.0.0.{2 + i % 11}", 0))
    try:
        s.connect(addr)
    except BlockingIOError:
        pass
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--conns", type=int, default=1100)
    ap.add_argument("--secs", type=float, default=30)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ap.add_argument("--nofile", default=f"1024:{hard}")
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    data = tempfile.mkdtemp(prefix="slow-clients-")
    srv = subprocess.Popen(
        ["prlimit", f"--nofile={a.nofile}", a.bin, "serve", "--http", "127.0.0.1:0",
         "--admin", "127.0.0.1:0", "--media-bind", "127.0.0.1:0", "--media-announce",
         "127.0.0.1", "--data-dir", data, "--drain-window-secs", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = srv.stdout.readline()
    m = re.search(r"http=http://([\d.]+):(\d+) admin=http://([\d.]+):(\d+)", line)
    if not m:
        sys.exit(f"no ready line: {line!r}")
    http = (m.group(1), int(m.group(2)))
    admin = (m.group(3), int(m.group(4)))

    sel = selectors.DefaultSelector()
    socks = {}

    def open_one(i):
        s = attacker(i, http)
        socks[s.fileno()] = (i, s, False)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, i)

    for i in range(a.conns):
        open_one(i)
    reopened = 0
    health, public = [], []
    t_end = time.monotonic() + a.secs
    next_probe = time.monotonic()
    while time.monotonic() < t_end:
        for key, ev in sel.select(timeout=0.02):
            i, s, sent = socks[key.fd]
            if ev & selectors.EVENT_WRITE and not sent:
                try:
                    s.send([HALF_HEADER, HALF_BODY, b""][i % 3])
                except OSError:
                    pass
                socks[key.fd] = (i, s, True)
                sel.modify(s, selectors.EVENT_READ, i)
            elif ev & selectors.EVENT_READ:
                try:
                    gone = not s.recv(4096)
                except OSError:
                    gone = True
                if gone:
                    sel.unregister(s)
                    del socks[key.fd]
                    s.close()
                    reopened += 1
                    open_one(i)
        if time.monotonic() >= next_probe:
            next_probe += 0.1
            health.append(get(admin, "/healthz"))
            public.append(get(http, "/api/v1/openapi.json"))

    srv.terminate()
    srv.wait(timeout=30)

    def summary(name, xs):
        ok = [t * 1000 for st, t in xs if st == 200]
        failed = len(xs) - len(ok)
        ok.sort()
        p = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] if ok else float("nan")
        print(f"{name}: {len(xs)} requests, {failed} failed, p50 {p(0.5):.1f} ms, "
              f"p99 {p(0.99):.1f} ms, max {max(ok) if ok else float('nan'):.1f} ms")

    print(f"attack: {a.conns} connections held for {a.secs:.0f} s, server closed (and the "
          f"attacker reopened) {reopened}; server nofile {a.nofile}")
    summary("admin /healthz", health)
    summary("public GET /api/v1/openapi.json", public)


if __name__ == "__main__":
    main()
