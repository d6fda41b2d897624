"""Import cost of every Lambda handler vs ``import boto3`` alone, and the deployment package's size.

    .venv/bin/python bench/cold_start.py [--venv /tmp/pb-cold-313] [--runs 5] [--baseline-ref REF]

Cold start on Lambda is dominated by imports. This builds (once) a virtualenv on the Lambda runtime's
Python (3.13, found through ``PYENV_VERSION`` or on PATH) holding only boto3 (the runtime ships it, with
bytecode), and beside it ``functions/requirements.txt`` installed as ``sam build`` packs them: wheels
unpacked, no bytecode (``pip --target --no-compile``), first on ``PYTHONPATH`` with ``functions/``. Each
handler is imported after ``import boto3`` in a fresh interpreter with ``-X importtime``, ``--runs``
times; "extra" is the minimum of what the handler's import added after boto3 in the same process (the
pair shares any busy moment). Two tables: the package as ``sam build`` ships it (nothing compiled: every
module of the package is compiled at each cold start, as on Lambda's read-only /var/task), and with
bytecode shipped (a warmed cache prefix). The handlers are the template's ``Handler:`` entries; the
``pydantic.main`` row (BaseModel) is what each function's first event still loads (every function parses
its event and settings with it). The package size is what ``sam build`` would zip for a function:
``pip install --target`` of the requirements plus the ``pixelbridge`` package, zipped (deflate). Figures
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
REQUIREMENTS = FUNCTIONS / "requirements.txt"
HANDLERS = sorted(
    set(re.findall(r"Handler: (pixelbridge\.handlers\.\w+)\.handler", (ROOT / "template.yaml").read_text()))
)
Tree = tuple[Path, Path, Path]  # (python with boto3, the package's requirements, the functions dir)
# Settings the handler modules may read at import; values are placeholders (nothing is called).
IMPORT_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold",
    "AWS_SECRET_ACCESS_KEY": "cold",
    "POWERTOOLS_SERVICE_NAME": "pixelbridge",
    "POWERTOOLS_METRICS_NAMESPACE": "PixelBridge",
}


def runtime_python() -> str:
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13.0:3.12.1:3.11.7")}
    for candidate in ("python3.13", sys.executable):
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] >= (3, 13))"],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            continue
        if version.stdout.strip() == "True":
            return candidate
    raise SystemExit("python3.13 not found (set PYENV_VERSION=3.13.0:3.12.1:3.11.7 or put it on PATH)")


def ensure_runtime(venv: Path, requirements: Path = REQUIREMENTS) -> tuple[Path, Path]:
    """(python, package): a venv holding only boto3, as the Lambda runtime ships it (with bytecode), and
    the requirements in ``venv/package`` as ``sam build`` packs them: wheels unpacked, no bytecode."""
    python = venv / "bin" / "python"
    package = venv / "package"
    stamp = venv / ".package-requirements"
    wanted = requirements.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python, package
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13.0:3.12.1:3.11.7")}
    subprocess.run([runtime_python(), "-m", "venv", "--clear", str(venv)], check=True, env=env)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "boto3"], check=True)
    subprocess.run([*pip, "--no-compile", "--target", str(package), "-r", str(requirements)], check=True)
    stamp.write_text(wanted)
    return python, package


def import_ms(trees: list[Tree], module: str, runs: int, pyc: Path | None) -> list[tuple[float, float]]:
    """Per tree, ``import boto3`` then ``import module`` in one fresh process, ``runs`` times: the minimum
    -X importtime of boto3 (cumulative) and of what the module added after it, in ms. The pair is measured
    in the same process, so a busy moment hits both; trees take turns run by run. ``pyc``: a bytecode cache
    prefix (warmed by an uncounted first run); without it no bytecode is written."""
    best = [(float("inf"), float("inf"))] * len(trees)
    for run in range(runs + (pyc is not None)):
        for index, (python, package, functions) in enumerate(trees):
            env = {**os.environ, **IMPORT_ENV, "PYTHONPATH": f"{package}{os.pathsep}{functions}"}
            env.pop("PYTHONDONTWRITEBYTECODE" if pyc else "PYTHONPYCACHEPREFIX", None)
            bytecode = (
                {"PYTHONPYCACHEPREFIX": str(pyc / str(index))} if pyc else {"PYTHONDONTWRITEBYTECODE": "1"}
            )
            env.update(bytecode)
            child = subprocess.run(
                [str(python), "-X", "importtime", "-c", f"import boto3; import {module}"],
                capture_output=True,
                text=True,
                env=env,
            )
            if child.returncode != 0:
                best[index] = (float("nan"), float("nan"))
            elif run or pyc is None:
                boto3_us, extra_us = _boto3_and_after_us(child.stderr)
                best[index] = (min(best[index][0], boto3_us / 1000), min(best[index][1], extra_us / 1000))
    return best


def _boto3_and_after_us(report: str) -> tuple[int, int]:
    """(cumulative time of the top-level ``import boto3``, sum of the top-level imports after it)."""
    top: list[tuple[int, str]] = []
    for line in report.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not name[1:].startswith(" "):  # one space after the bar: a top-level import
            top.append((int(cumulative), name.strip()))
    boto3 = next(index for index, (_, name) in enumerate(top) if name == "boto3")
    return top[boto3][0], sum(cumulative for cumulative, _ in top[boto3 + 1 :])


def package_mb(python: Path, functions: Path) -> tuple[float, float, list[str]]:
    """(unzipped MB, zipped MB, botocore copies) of the requirements + the pixelbridge package in
    ``functions``, as sam build packs them."""
    requirements = functions / "requirements.txt"
    with tempfile.TemporaryDirectory() as target:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--target", target, "-r", str(requirements)],
            check=True,
        )
        raw = 0
        archive_path = Path(target) / "function.zip"
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for base in (Path(target), functions):
                for path in sorted(base.rglob("*")):
                    if path.is_file() and path != archive_path and "__pycache__" not in path.parts:
                        raw += path.stat().st_size
                        archive.write(path, path.relative_to(base))
        botocores = sorted(str(p.relative_to(target)) for p in Path(target).glob("botocore*"))
        return raw / 1e6, archive_path.stat().st_size / 1e6, botocores


def checkout(ref: str, into: Path) -> Path:
    """The ``functions/`` tree of git ``ref`` (for a before/after table)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "functions"], capture_output=True, check=True
    )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "functions"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "pixelbridge-cold-313")
    parser.add_argument("--baseline-ref", help="a git ref measured alongside (its code and requirements)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trees = [(*ensure_runtime(args.venv), FUNCTIONS)]
    labels = ["now"]
    with tempfile.TemporaryDirectory() as scratch:
        if args.baseline_ref:
            functions = checkout(args.baseline_ref, Path(scratch))
            same = (functions / "requirements.txt").read_text() == REQUIREMENTS.read_text()
            venv = args.venv if same else args.venv.with_name(args.venv.name + "-baseline")
            trees.append((*ensure_runtime(venv, functions / "requirements.txt"), functions))
            labels.append(args.baseline_ref[:10])
        report(trees, labels, args.runs, Path(scratch))


def report(trees: list[Tree], labels: list[str], runs: int, scratch: Path) -> None:
    version = subprocess.run([str(trees[0][0]), "-V"], capture_output=True, text=True).stdout.strip()
    print(
        f"{version}, -X importtime, minimum of {runs}, trees interleaved. Each process imports boto3, then"
        " the module: 'extra' is what the module's import added (ms), 'boto3' what boto3's took (ms)"
    )
    for mode, pyc in (("package as sam build ships it (no .pyc)", None), (".pyc shipped", scratch / "pyc")):
        print(f"\n{mode}")
        header = f"{'import (after boto3)':<42}" + "".join(
            f" {f'{name} extra':>16} {'boto3':>6}" for name in labels
        )
        print(header + "\n" + "-" * len(header))
        for module in [*HANDLERS, "pydantic.main", "pixelbridge.convert.pipeline"]:
            cells = [
                f" {extra:>+16.0f} {boto3:>6.0f}" for boto3, extra in import_ms(trees, module, runs, pyc)
            ]
            print(f"{module:<42}" + "".join(cells))
    for label, (python, _, functions) in zip(labels, trees, strict=True):
        raw, zipped, botocores = package_mb(python, functions)
        print(
            f"package ({label}): {raw:.1f} MB unzipped, {zipped:.1f} MB zipped; botocore copies: {botocores}"
        )


if __name__ == "__main__":
    main()
