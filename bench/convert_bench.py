"""Benchmark of the tar.gz -> zip converter against the seed way and the gunzip limit.

    .venv/bin/python bench/convert_bench.py --size-mb 1024

Generates a UE-like build (.tar.gz) once in --workdir, then runs every variant in its own subprocess
(so its peak RSS can be read with wait4) and prints one table. Figures are reported, never asserted.
Targets: converter >= 95 % of single-core isal gunzip, >= 13x the seed way, peak RSS <= 64 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

MiB = 1024 * 1024
CHUNK = 1 * MiB


# --- variants (each runs in a child process: `convert_bench.py --variant NAME --input PATH`) ------------


def variant_isal_gunzip(source: Path, out_dir: Path) -> None:
    from isal import igzip

    buffer = bytearray(CHUNK)
    with igzip.open(source, "rb") as stream:
        while stream.readinto(buffer):
            pass


def variant_converter_local(source: Path, out_dir: Path) -> None:
    from pixelbridge.convert.pipeline import convert_targz_to_zip
    from pixelbridge.convert.sinks import LocalFileSink

    sink = LocalFileSink(out_dir / "out.zip")
    with open(source, "rb") as handle:
        convert_targz_to_zip(handle, sink)
    sink.complete()


def variant_converter_null(source: Path, out_dir: Path) -> None:
    from pixelbridge.convert.pipeline import convert_targz_to_zip
    from pixelbridge.convert.sinks import CountingNullSink

    with open(source, "rb") as handle:
        convert_targz_to_zip(handle, CountingNullSink())


def variant_converter_s3_moto(source: Path, out_dir: Path) -> float:
    """Returns its own timing: uploading the input into moto is setup, not conversion."""
    import boto3
    from moto import mock_aws

    from pixelbridge.convert.pipeline import convert_targz_to_zip
    from pixelbridge.convert.sinks import S3MultipartSink

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        s3.upload_file(str(source), "bench", "in.tar.gz")
        started = time.perf_counter()
        body = s3.get_object(Bucket="bench", Key="in.tar.gz")["Body"]
        sink = S3MultipartSink(s3, "bench", "out.zip", expected_size=source.stat().st_size)
        try:
            convert_targz_to_zip(body, sink)  # type: ignore[arg-type]  # StreamingBody reads like a file
            sink.complete()
        except BaseException:
            sink.abort()
            raise
        return time.perf_counter() - started


def variant_stdlib_stream_store(source: Path, out_dir: Path) -> None:
    import shutil as copier
    import tarfile
    import zipfile

    with (
        tarfile.open(source, "r|gz") as tar,
        zipfile.ZipFile(out_dir / "out.zip", "w", allowZip64=True) as zf,
    ):
        for member in tar:
            if member.isfile():
                info = zipfile.ZipInfo(member.name, (2020, 1, 1, 0, 0, 0))
                info.file_size = member.size
                data = tar.extractfile(member)
                assert data is not None
                with zf.open(info, "w") as target:
                    copier.copyfileobj(data, target, CHUNK)


def _seed(source: Path, out_dir: Path, zip_flags: list[str]) -> None:
    tree = out_dir / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-xzf", str(source), "-C", str(tree)], check=True)
    subprocess.run(["zip", "-r", "-q", *zip_flags, str(out_dir / "out.zip"), "."], cwd=tree, check=True)


def variant_seed_tar_zip(source: Path, out_dir: Path) -> None:
    _seed(source, out_dir, [])


def variant_seed_tar_zip0(source: Path, out_dir: Path) -> None:
    _seed(source, out_dir, ["-0"])


VARIANTS: dict[str, tuple[str, Callable[[Path, Path], float | None]]] = {
    "isal_gunzip": ("isal gunzip 1 core -> /dev/null (limit)", variant_isal_gunzip),
    "converter_local": ("converter -> LocalFileSink", variant_converter_local),
    "converter_null": ("converter -> CountingNullSink", variant_converter_null),
    "converter_s3": ("converter S3 (moto) get_object -> S3MultipartSink", variant_converter_s3_moto),
    "stdlib_store": ("stdlib tarfile r|gz -> zipfile store", variant_stdlib_stream_store),
    "seed_zip": ("seed: tar -xzf + zip -r -q", variant_seed_tar_zip),
    "seed_zip0": ("seed: tar -xzf + zip -0 -r -q", variant_seed_tar_zip0),
}


def run_variant_in_child(name: str, source: Path) -> None:
    with tempfile.TemporaryDirectory(dir=source.parent) as out:
        started = time.perf_counter()
        own_timing = VARIANTS[name][1](source, Path(out))
        seconds = own_timing if own_timing is not None else time.perf_counter() - started
    print(json.dumps({"seconds": seconds}))


# --- parent: generate, run, report ------------------------------------------------------------------------


def ensure_input(workdir: Path, size_mb: int, small_files: int) -> Path:
    from tests.support.archives import make_ue_like_targz

    path = workdir / f"ue-{size_mb}mb-{small_files}f.tar.gz"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        partial = path.with_suffix(".partial")
        make_ue_like_targz(partial, pak_bytes=size_mb * MiB, small_files=small_files)
        partial.rename(path)
    return path


def measure(name: str, source: Path) -> dict[str, float]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--variant", name, "--input", str(source)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"variant {name} failed ({child.returncode})")
    seconds = json.loads(output.strip().splitlines()[-1])["seconds"]
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the .pak payload (MiB)")
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), help="run only these variants")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        run_variant_in_child(args.variant, args.input)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = ensure_input(args.workdir, args.size_mb, args.small_files)
    names = args.only or list(VARIANTS)
    if shutil.which("zip") is None:
        names = [name for name in names if not name.startswith("seed")]
        print("zip not installed (apt-get install zip): seed variants skipped", file=sys.stderr)
    results = {name: measure(name, source) for name in names}
    print_table(source, results)


def print_table(source: Path, results: dict[str, dict[str, float]]) -> None:
    input_mb = source.stat().st_size / 1e6
    gunzip = results.get("isal_gunzip", {}).get("seconds")
    seed = results.get("seed_zip", {}).get("seconds")
    print(
        f"\ninput {source.name}: {input_mb:.0f} MB gzip, {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}"
    )
    header = (
        f"{'variant':<52} {'seconds':>8} {'in MB/s':>8} {'% gunzip':>9} {'x seed':>7} {'peak RSS MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, figures in results.items():
        seconds = figures["seconds"]
        vs_gunzip = f"{100 * gunzip / seconds:.0f} %" if gunzip else "-"
        vs_seed = f"{seed / seconds:.1f}" if seed else "-"
        print(
            f"{VARIANTS[name][0]:<52} {seconds:>8.2f} {input_mb / seconds:>8.0f} {vs_gunzip:>9} "
            f"{vs_seed:>7} {figures['peak_rss_mb']:>12.0f}"
        )
    print("\n(converter_s3 peak RSS includes moto keeping the input and output objects in memory)")


if __name__ == "__main__":
    main()
