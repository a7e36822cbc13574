"""Load test of the digit web app (`tinygrad-mnist serve`) on 127.0.0.1 only, bounded in
clients, requests and time.

It starts the real command in a subprocess (`python -m tinygrad_mnist serve RUN --port 0
--quiet`, one BLAS thread) on a run directory (--run; default: an untrained default MLP,
784-512-256-10, which costs the same per forward pass as a trained one), then:

1. `--clients` keep-alive connections (default 200) each POST the drawing the page sends
   (112x112 greys, ~60 kB of JSON; `--body png`: the same drawing as a PNG file) back to
   back for `--seconds`, after a warm-up;
2. the same again while `--tricklers` more connections (default 50) send a request's
   headers one byte every half second: they must not delay the others, and the server
   must close each of them at its request timeout (10 s).

It prints requests/s, latency percentiles, errors and the server's CPU time per answer
(from /proc: what an answer costs, whatever share of a busy machine the server gets)
for each phase, and how long the tricklers were kept, and compares them with the
targets (--check exits 1 if one is missed): >= 400 requests/s, p99 <= 500 ms, no
errors, tricklers closed within 10-12 s.

    python benchmarks/bench_serve.py                 # about 45 s
    python benchmarks/bench_serve.py --clients 50 --seconds 5 --tricklers 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

HOST = "127.0.0.1"  # never anything else
MAX_CLIENTS, MAX_SECONDS, MAX_TRICKLERS = 1000, 120.0, 200
TARGETS = {"requests_per_s": 400.0, "p99_ms": 500.0}
TRICKLE_WINDOW = (9.5, 12.0)  # seconds a trickling connection may be kept: the 10 s timeout


def drawing_body(size: int = 112) -> bytes:
    """What the page sends: a dark vertical stroke on white, size x size greys."""
    pixels = np.full((size, size), 255, dtype=np.int64)
    pixels[size // 6:-size // 6, size // 2 - 6:size // 2 + 6] = 0
    return json.dumps({"width": size, "height": size,
                       "pixels": pixels.ravel().tolist()}).encode()


def drawing_png(size: int = 112) -> bytes:
    """The same drawing as a PNG file (greyscale), for ``--body png``."""
    import io

    from PIL import Image
    pixels = np.array(json.loads(drawing_body(size))["pixels"], np.uint8).reshape(size, size)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def request_bytes(body: bytes, content_type: str = "application/json") -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def cpu_seconds(pid: int) -> Optional[float]:
    """User plus system CPU time of process `pid` so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def default_run(directory: Path) -> Path:
    """A run directory holding an untrained default MLP as best.npz."""
    import dataclasses

    from tinygrad_mnist import save
    from tinygrad_mnist.models import build_model
    from tinygrad_mnist.app.config import TrainConfig
    config = TrainConfig().validate()
    model = build_model(config)
    save({"format": "tinygrad_mnist.model", "model": model.state_dict(),
          "config": dataclasses.asdict(config), "stats": [0.1307, 0.3081], "epoch": 0,
          "val_acc": 0.0}, directory / "best.npz")
    return directory


def start_server(run: Path, threads: int = 1) -> Tuple[subprocess.Popen, int]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tinygrad_mnist", "serve", str(run),
                             "--host", HOST, "--port", "0", "--quiet",
                             "--threads", str(threads)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"the server did not start: {proc.stderr.read()[-2000:]}")


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    body = await reader.readexactly(length)
    if status == 200 and b'"digit"' not in body:
        return -1
    return status


async def client(port: int, payload: bytes, stop: float, latencies: List[float],
                 errors: List[str]) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as e:
        errors.append(f"connect: {e}")
        return
    try:
        while time.perf_counter() < stop:
            began = time.perf_counter()
            writer.write(payload)
            status = await asyncio.wait_for(read_response(reader), 30)
            if status != 200:
                errors.append(f"status {status}")
            latencies.append(time.perf_counter() - began)
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        writer.close()


async def trickler(port: int, kept: List[float], stop: float) -> None:
    """Send a request's head one byte every 0.5 s; note how long the server keeps us."""
    head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    reader, writer = await asyncio.open_connection(HOST, port)
    began = time.perf_counter()
    try:
        for i in range(10 ** 6):
            if time.perf_counter() > stop:
                kept.append(float("inf"))  # never closed within the test
                return
            writer.write(head[i % len(head):i % len(head) + 1])
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.5)
            except asyncio.TimeoutError:
                continue
            if not data or data.startswith(b"HTTP/1.1 408"):
                kept.append(time.perf_counter() - began)
                return
    except OSError:
        kept.append(time.perf_counter() - began)
    finally:
        writer.close()


async def phase(port: int, payload: bytes, clients: int, seconds: float,
                tricklers: int) -> Dict[str, float]:
    latencies: List[float] = []
    errors: List[str] = []
    kept: List[float] = []
    began = time.perf_counter()
    stop = began + seconds
    slow = [asyncio.create_task(trickler(port, kept, began + seconds + 5))
            for _ in range(tricklers)]
    await asyncio.gather(*(client(port, payload, stop, latencies, errors)
                           for _ in range(clients)))
    took = time.perf_counter() - began
    await asyncio.gather(*slow)
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    result = {"requests": len(latencies), "errors": len(errors),
              "requests_per_s": len(latencies) / took,
              "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
              "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}
    if errors:
        result["first_error"] = errors[0]  # type: ignore[assignment]
    if tricklers:
        result["trickle_kept_min_s"] = min(kept)
        result["trickle_kept_max_s"] = max(kept)
    return result


#: (phase, result) of every phase run, for --record.
PHASES: List[tuple] = []


def report(name: str, result: Dict[str, float]) -> List[str]:
    PHASES.append((name, result))
    line = (f"{name:<28} {result['requests']:>6} requests  {result['requests_per_s']:7.1f} "
            f"req/s  p50 {result['p50_ms']:6.1f} ms  p90 {result['p90_ms']:6.1f} ms  "
            f"p99 {result['p99_ms']:6.1f} ms  max {result['max_ms']:6.1f} ms  "
            f"errors {result['errors']}")
    if "server_cpu_ms" in result:
        line += f"  server CPU {result['server_cpu_ms']:.2f} ms/answer"
    if "trickle_kept_min_s" in result:
        line += (f"  tricklers closed after {result['trickle_kept_min_s']:.1f}-"
                 f"{result['trickle_kept_max_s']:.1f} s")
    print(line, flush=True)
    missed = []
    if result["requests_per_s"] < TARGETS["requests_per_s"]:
        missed.append(f"{name}: {result['requests_per_s']:.0f} req/s < "
                      f"{TARGETS['requests_per_s']:.0f}")
    if not result["p99_ms"] <= TARGETS["p99_ms"]:
        missed.append(f"{name}: p99 {result['p99_ms']:.0f} ms > {TARGETS['p99_ms']:.0f}")
    if result["errors"]:
        missed.append(f"{name}: {result['errors']} errors ({result.get('first_error')})")
    if "trickle_kept_min_s" in result and not (
            TRICKLE_WINDOW[0] <= result["trickle_kept_min_s"]
            and result["trickle_kept_max_s"] <= TRICKLE_WINDOW[1]):
        missed.append(f"{name}: tricklers kept {result['trickle_kept_min_s']:.1f}-"
                      f"{result['trickle_kept_max_s']:.1f} s, not at the 10 s timeout")
    return missed


async def measured_phase(pid: int, *args: object) -> Dict[str, float]:
    """`phase(*args)`, with the server's CPU time per answer when /proc tells it (the
    cost of an answer, whatever share of the machine the server gets)."""
    before = cpu_seconds(pid)
    result = await phase(*args)  # type: ignore[arg-type]
    after = cpu_seconds(pid)
    if before is not None and after is not None and result["requests"]:
        result["server_cpu_ms"] = 1000 * (after - before) / result["requests"]
    return result


async def run(port: int, pid: int, args: argparse.Namespace) -> List[str]:
    payload = (request_bytes(drawing_png(), "image/png") if args.body == "png"
               else request_bytes(drawing_body()))
    await phase(port, payload, min(args.clients, 20), args.warmup, 0)
    missed = report(f"{args.clients} clients", await measured_phase(
        pid, port, payload, args.clients, args.seconds, 0))
    if args.tricklers:
        seconds = max(args.seconds, TRICKLE_WINDOW[1] + 1)
        missed += report(f"{args.clients} clients + {args.tricklers} slow", await measured_phase(
            pid, port, payload, args.clients, seconds, args.tricklers))
    return missed


def record_phases(args: argparse.Namespace, argv: List[str]) -> None:
    """Each phase of this run as an entry of benchmarks/results.json."""
    import datetime
    import harness
    started = datetime.datetime.now().strftime("%H:%M:%S")
    for name, result in PHASES:
        clients = name.replace(" clients", "")
        harness.record_result("bench_serve", "serve-mlp" if args.run is None else "serve-run", {
            "run": started, "clients": clients,
            "requests_per_s": round(result["requests_per_s"], 1),
            **{k: round(result[k], 1) for k in ("p50_ms", "p90_ms", "p99_ms")},
            "errors": int(result["errors"])}, Path(__file__), argv)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--run", type=Path, help="run directory to serve (default: an "
                                                 "untrained default MLP)")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients "
                                                                 "(default: 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase "
                                                                    "(default: 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up (default: 2 s)")
    parser.add_argument("--tricklers", type=int, default=50, help="slow connections in the "
                                                                  "second phase (default: 50; "
                                                                  "0 skips it)")
    parser.add_argument("--threads", type=int, default=1, help="the server's BLAS threads "
                                                               "(default: 1)")
    parser.add_argument("--body", choices=("json", "png"), default="json",
                        help="what each client posts: the page's JSON drawing (default) "
                             "or the same drawing as a PNG file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--record", action="store_true",
                        help="add each phase's figures to benchmarks/results.json (the "
                             "tables of docs/ are drawn from it)")
    args = parser.parse_args(argv)
    if not 1 <= args.threads <= (os.cpu_count() or 1):
        parser.error(f"--threads must be in 1..{os.cpu_count()}, got {args.threads}")
    if not (1 <= args.clients <= MAX_CLIENTS and 0 < args.seconds <= MAX_SECONDS
            and 0 <= args.tricklers <= MAX_TRICKLERS and 0 <= args.warmup <= MAX_SECONDS):
        parser.error(f"bounds: 1..{MAX_CLIENTS} clients, up to {MAX_SECONDS:.0f} s, "
                     f"0..{MAX_TRICKLERS} tricklers")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        run_dir = args.run or default_run(Path(tmp))
        proc, port = start_server(run_dir, args.threads)
        try:
            print(f"server: {sys.executable} -m tinygrad_mnist serve {run_dir} on "
                  f"{HOST}:{port} ({args.threads} BLAS thread(s)); client: asyncio, {os.cpu_count()} cores "
                  f"shared", flush=True)
            try:
                import uvloop
                missed = uvloop.run(run(port, proc.pid, args))
            except ImportError:
                missed = asyncio.run(run(port, proc.pid, args))
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    if args.record:
        record_phases(args, list(sys.argv[1:] if argv is None else argv))
    print("targets: >= 400 req/s, p99 <= 500 ms, 0 errors, tricklers closed at 10 s: "
          + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
