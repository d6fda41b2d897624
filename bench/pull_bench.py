"""Benchmark of the pull path: BuildPixel artifact URL → S3 (FetchArtifact) → zip (converter), peak RSS.

    .venv/bin/python bench/pull_bench.py --sizes 60,300

The parent generates a UE-like build per size, serves it from the BuildPixel simulator and runs a moto
server (so neither the artifact nor moto's storage counts against the measured process). A child
process per size runs the real FetchArtifact use case (streamed multipart upload, MD5 check) and then
the converter reading that S3 object into an S3 multipart zip, and reports MB/s of both phases and its
peak RSS (VmHWM). Flat memory means the peak does not grow with the build size.
Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

MiB = 1024 * 1024
API_TOKEN = "bp_bench_token"  # noqa: S105 - the local simulator's token
REGION = "us-east-1"


def peak_rss_mib() -> float:
    """This process's high-water RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a
    child spawned by a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- child: fetch + convert, measured --------------------------------------------------------------------


def run_child(job: dict[str, Any]) -> dict[str, float]:
    import boto3

    from pixelbridge.adapters.buildpixel import BuildPixelClient
    from pixelbridge.adapters.builds import BuildRepository
    from pixelbridge.adapters.ranged_reader import artifact_readers
    from pixelbridge.adapters.store import pull_key
    from pixelbridge.convert.pipeline import convert_targz_to_zip
    from pixelbridge.convert.sinks import S3MultipartSink, resumable_s3_sinks
    from pixelbridge.usecases.fetch_artifact import FetchArtifact, FetchLimits

    s3 = boto3.client("s3", region_name=REGION)
    builds = BuildRepository(job["table"], dynamodb=boto3.resource("dynamodb", region_name=REGION))
    baseline = peak_rss_mib()

    client = BuildPixelClient(job["api_url"], lambda: API_TOKEN)
    fetch = FetchArtifact(
        builds=builds,
        source=client,
        open_reader=artifact_readers(client),
        open_sink=resumable_s3_sinks(s3, job["bucket"], part_size=16 * MiB),
        limits=FetchLimits(max_bytes=24 * 1024**3),
    )
    started = time.perf_counter()
    outcome = fetch(job["build_id"], None)
    fetch_seconds = time.perf_counter() - started
    if outcome.result != "stored":
        raise SystemExit(f"fetch {outcome.result}: {builds.get(job['build_id'])}")
    fetch_peak = peak_rss_mib()

    started = time.perf_counter()
    body = s3.get_object(Bucket=job["bucket"], Key=pull_key(job["build_id"]))["Body"]
    sink = S3MultipartSink(s3, job["bucket"], f"dl/bench/{job['build_id']}.zip", expected_size=job["size"])
    try:
        convert_targz_to_zip(body, sink)  # StreamingBody reads like a file
        sink.complete()
    except BaseException:
        sink.abort()
        raise
    convert_seconds = time.perf_counter() - started
    return {
        "fetch_mb_s": job["size"] / MiB / fetch_seconds,
        "convert_mb_s": job["size"] / MiB / convert_seconds,
        "baseline_rss_mib": baseline,
        "fetch_peak_rss_mib": fetch_peak,
        "peak_rss_mib": peak_rss_mib(),
    }


# --- parent: servers, inputs, report ---------------------------------------------------------------------


def start_servers() -> tuple[Any, str, Any]:
    from moto.server import ThreadedMotoServer

    from pixelbridge_local.buildpixel_sim import BuildPixelSimulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    simulator = BuildPixelSimulator(signing_secret="unused", api_token=API_TOKEN)  # noqa: S106
    simulator.start()
    return moto, f"http://{host}:{port}", simulator


def prepare(endpoint: str) -> tuple[str, str]:
    import boto3

    from pixelbridge_local.template import create_tables

    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    table = create_tables(boto3.client("dynamodb", region_name=REGION), prefix="bench")["BuildsTable"]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="bench")
    return table, "bench"


def measure(size_mb: int, endpoint: str, simulator: Any, table: str, bucket: str) -> dict[str, float]:
    import boto3

    from pixelbridge.adapters.builds import BuildRepository
    from pixelbridge_local.sample_build import big_ue_like_targz

    artifact = big_ue_like_targz(pak_bytes=size_mb * MiB)
    build_id = f"bench{size_mb}"
    simulator.add_artifact(build_id, artifact)
    BuildRepository(table, dynamodb=boto3.resource("dynamodb", region_name=REGION)).create(
        {"buildId": build_id, "status": "received", "source": "pull", "route": "bench"}, event="received"
    )
    job = {
        "build_id": build_id,
        "api_url": simulator.url,
        "table": table,
        "bucket": bucket,
        "size": len(artifact),
    }
    del artifact
    child = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return {"artifact_mb": job["size"] / MiB, **json.loads(child.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="300", help="comma-separated artifact sizes in MB")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    moto, endpoint, simulator = start_servers()
    try:
        table, bucket = prepare(endpoint)
        print(
            f"{'artifact MB':>11} {'fetch MB/s':>10} {'convert MB/s':>12} {'RSS base':>9} "
            f"{'RSS fetch':>9} {'RSS peak':>9}  (MiB)"
        )
        for size in (int(value) for value in args.sizes.split(",")):
            row = measure(size, endpoint, simulator, table, bucket)
            print(
                f"{row['artifact_mb']:>11.0f} {row['fetch_mb_s']:>10.1f} {row['convert_mb_s']:>12.1f} "
                f"{row['baseline_rss_mib']:>9.0f} {row['fetch_peak_rss_mib']:>9.0f} "
                f"{row['peak_rss_mib']:>9.0f}"
            )
    finally:
        simulator.stop()
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
