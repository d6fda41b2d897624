"""Parallel inflate (rapidgzip) vs the converter's single-core gunzip on the realistic input.

    make bench-inflate   # = .venv/bin/python bench/inflate_bench.py [--size-mb 512] [--threads 1,2,4]

The input is ``io_bench``'s realistic one: a UE-like tar.gz whose ``.pak`` content is Huffman-coded like
compressed assets, so it inflates at real speed (cached in bench/out). Each variant decompresses the
whole file to nothing in its own child process (its time and peak RSS are its own); with --repeat N
the fastest of N interleaved runs is kept and the largest RSS. Variants:

- the converter's path today: ``GunzipThread`` (isal's C gzip reader on its own thread, fixed blocks);
- isal ``igzip`` single-threaded, the single-core limit;
- rapidgzip with 1, 2, ... threads reading the file by path (pread, no GIL), and with 2 threads reading a
  Python file object (what a seekable S3 source written in Python would look like to it).

rapidgzip needs a seekable source (it finds deflate block boundaries by seeking ahead), so in the
product it could only read the stored artifact (ConvertFunction), not a one-pass download stream.
Figures are printed, never asserted. On a machine with fewer cores than threads, the extra threads
only show the cost of sharing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

MiB = 1024 * 1024
READ = 4 * MiB


def ensure_realistic_input(workdir: Path, size_mb: int) -> Path:
    from bench.io_bench import write_realistic_targz

    path = workdir / f"huffman-{size_mb}mb.tar.gz"  # io_bench's name for it: the two share the file
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...", file=sys.stderr)
        write_realistic_targz(path, size_mb * MiB)
    return path


def _drain(stream: Any) -> int:
    buffer = bytearray(READ)
    total = 0
    while count := stream.readinto(buffer):
        total += count
    return total


def variant_gunzip_thread(path: Path, _: int) -> int:
    from pixelbridge.convert.streams import CountingSource, GunzipThread

    total = 0
    with open(path, "rb") as handle:
        gunzip = GunzipThread(CountingSource(handle))
        while view := gunzip.read_view(READ):
            total += len(view)
        gunzip.close()
    return total


def variant_isal_igzip(path: Path, _: int) -> int:
    from isal import igzip

    with igzip.open(path, "rb") as stream:
        return _drain(stream)


def variant_rapidgzip_path(path: Path, threads: int) -> int:
    import rapidgzip  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with rapidgzip.open(str(path), parallelization=threads) as stream:
        return _drain(stream)


def variant_rapidgzip_file_object(path: Path, threads: int) -> int:
    import rapidgzip  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with open(path, "rb") as handle, rapidgzip.open(handle, parallelization=threads) as stream:
        return _drain(stream)


def variant_converter(path: Path, _: int) -> int:
    from pixelbridge.convert.pipeline import convert_targz_to_zip
    from pixelbridge.convert.sinks import CountingNullSink

    with open(path, "rb") as handle:
        return convert_targz_to_zip(handle, CountingNullSink()).bytes_in


def variant_converter_on_rapidgzip(path: Path, threads: int) -> int:
    import rapidgzip  # type: ignore[import-untyped,import-not-found,unused-ignore]

    from pixelbridge.convert.pipeline import convert_tar_to_zip
    from pixelbridge.convert.sinks import CountingNullSink

    with rapidgzip.open(str(path), parallelization=threads) as tar:
        convert_tar_to_zip(tar, CountingNullSink())
    return path.stat().st_size


VARIANTS = {
    "gunzip_thread": ("converter today: GunzipThread (isal, own thread)", variant_gunzip_thread),
    "isal_igzip": ("isal igzip, one thread (the single-core limit)", variant_isal_igzip),
    "rapidgzip_path": ("rapidgzip, {threads} thread(s), file path", variant_rapidgzip_path),
    "rapidgzip_file_object": (
        "rapidgzip, {threads} thread(s), Python file object",
        variant_rapidgzip_file_object,
    ),
    "converter": ("converter -> null sink (GunzipThread: today)", variant_converter),
    "converter_on_rapidgzip": (
        "converter -> null sink on rapidgzip, {threads} thread(s)",
        variant_converter_on_rapidgzip,
    ),
}


def run_child(job: dict[str, Any]) -> dict[str, float]:
    function = VARIANTS[job["variant"]][1]
    started = time.perf_counter()
    size = function(Path(job["input"]), job["threads"])
    seconds = time.perf_counter() - started
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    return {"seconds": seconds, "bytes": size, "peak_rss_mb": peak}


def measure(jobs: list[dict[str, Any]], repeat: int) -> list[dict[str, float]]:
    """Fastest of ``repeat`` interleaved runs per job (slow runs on a shared machine measure the
    neighbours), with the largest peak RSS seen."""
    results: list[list[dict[str, float]]] = [[] for _ in jobs]
    for _ in range(repeat):
        for index, job in enumerate(jobs):
            child = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True
            )
            if child.returncode != 0:
                raise SystemExit(f"{job} failed:\n{child.stderr[-3000:]}")
            results[index].append(json.loads(child.stdout.strip().splitlines()[-1]))
    return [
        {
            "seconds": min(run["seconds"] for run in runs),
            "bytes": runs[0]["bytes"],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        }
        for runs in results
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=512, help=".pak payload in MiB")
    parser.add_argument("--threads", default="", help="rapidgzip thread counts (default: 1, 2, all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is kept")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    source = ensure_realistic_input(args.workdir, args.size_mb)
    cores = os.cpu_count() or 1
    threads = sorted({int(t) for t in args.threads.split(",") if t} or {1, 2, cores})
    jobs: list[dict[str, Any]] = [
        {"variant": "gunzip_thread", "threads": 1},
        {"variant": "isal_igzip", "threads": 1},
        *({"variant": "rapidgzip_path", "threads": count} for count in threads),
        {"variant": "rapidgzip_file_object", "threads": 2},
        {"variant": "converter", "threads": 1},
        *({"variant": "converter_on_rapidgzip", "threads": count} for count in threads),
    ]
    for job in jobs:
        job["input"] = str(source)
    results = measure(jobs, args.repeat)
    compressed = source.stat().st_size
    print(
        f"{cores} cores, python {sys.version.split()[0]}, input {source.name}: {compressed / 1e6:,.0f} MB"
        f" gzip, {results[0]['bytes'] / 1e6:,.0f} MB tar; fastest of {args.repeat}, largest RSS"
    )
    header = f"{'variant':<58} {'s':>7} {'gzip MB/s':>10} {'x today':>8} {'peak RSS MB':>12}"
    print(header + "\n" + "-" * len(header))
    for job, result in zip(jobs, results, strict=True):
        # x today: against GunzipThread for the gunzip rows, against today's converter for the converter rows
        today = next(r for j, r in zip(jobs, results, strict=True) if j["variant"] == _today(job["variant"]))
        label = VARIANTS[job["variant"]][0].format(threads=job["threads"])
        rate, gain = compressed / 1e6 / result["seconds"], today["seconds"] / result["seconds"]
        print(
            f"{label:<58} {result['seconds']:>7.2f} {rate:>10.0f} {gain:>8.2f} {result['peak_rss_mb']:>12.0f}"
        )


def _today(variant: str) -> str:
    return "converter" if variant.startswith("converter") else "gunzip_thread"


if __name__ == "__main__":
    main()
