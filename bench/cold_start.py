"""Import cost of every Lambda handler vs ``import boto3`` alone, and the deployment package's size.

    .venv/bin/python bench/cold_start.py [--venv /tmp/pb-cold-313] [--runs 5] [--baseline-ref REF]

Cold start on Lambda is dominated by imports. This builds (once) a virtualenv on the Lambda runtime's
Python (3.13, found through ``PYENV_VERSION`` or on PATH) holding only ``functions/requirements.txt``
plus boto3 (the runtime ships boto3; it is not in the package), then runs each import in a fresh
interpreter with ``-X importtime`` ``--runs`` times and keeps the minimum. "extra" is a handler's cost
above ``import boto3`` measured in the same run. Two columns per tree: "no .pyc" compiles PixelBridge's
own modules at every import (a package that ships no bytecode for them, and this bench's earlier
figures); ".pyc" imports from warmed bytecode (a separate cache prefix). The handlers are the template's
``Handler:`` entries; the ``pydantic`` row is what each function's first event still loads (every
function parses its event and settings with it). The package size is what ``sam build`` would zip for a
function: ``pip install --target`` of the requirements plus the ``pixelbridge`` package, zipped
(deflate). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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


def import_ms(trees: list[Tree], statement: str, runs: int, pyc: Path | None) -> list[tuple[float, float]]:
    """Per tree, the minimum over ``runs`` fresh processes of (the import's cumulative -X importtime, the
    process's CPU time), in ms. Trees take turns run by run, so a busy moment hits all alike. ``pyc``: a
    bytecode cache prefix (warmed by an uncounted first run); without it no bytecode is written."""
    best = [(float("inf"), float("inf"))] * len(trees)
    for run in range(runs + (pyc is not None)):
        for index, (python, package, functions) in enumerate(trees):
            env = {**os.environ, **IMPORT_ENV, "PYTHONPATH": f"{package}{os.pathsep}{functions}"}
            env.pop("PYTHONDONTWRITEBYTECODE" if pyc else "PYTHONPYCACHEPREFIX", None)
            bytecode = (
                {"PYTHONPYCACHEPREFIX": str(pyc / str(index))} if pyc else {"PYTHONDONTWRITEBYTECODE": "1"}
            )
            env.update(bytecode)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            child = subprocess.run(
                [str(python), "-X", "importtime", "-c", statement], capture_output=True, text=True, env=env
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
            if child.returncode != 0:
                best[index] = (float("nan"), float("nan"))
            elif run or pyc is None:
                wall = _top_level_us(child.stderr, statement) / 1000
                best[index] = (min(best[index][0], wall), min(best[index][1], cpu))
    return best


def _top_level_us(report: str, statement: str) -> int:
    """Sum of the cumulative times of the top-level imports the statement made (not the interpreter's
    own start-up imports, which come before the first module the statement names)."""
    roots = {name.strip().split(".")[0] for name in statement.removeprefix("import ").split(",")}
    top: list[tuple[int, str]] = []
    for line in report.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not name[1:].startswith(" "):  # one space after the bar: a top-level import
            top.append((int(cumulative), name.strip()))
    first = next(index for index, (_, name) in enumerate(top) if name.split(".")[0] in roots)
    return sum(cumulative for cumulative, _ in top[first:])


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
        f"{version}, minimum of {runs}, runs interleaved. ms: -X importtime of the statement's imports;"
        " extra: above import boto3 alone; CPU extra: the same for the whole process's CPU time (less"
        " sensitive to a loaded machine)"
    )
    for mode, pyc in (("package as sam build ships it (no .pyc)", None), (".pyc shipped", scratch / "pyc")):
        print(f"\n{mode}")
        header = f"{'import':<36}" + "".join(
            f" {label:>11} {'extra':>6} {'CPU extra':>9}" for label in labels
        )
        print(header + "\n" + "-" * len(header))
        boto3 = import_ms(trees, "import boto3", runs, pyc)
        print(f"{'boto3 (alone)':<36}" + "".join(f" {ms:>11.0f} {'':>6} {'':>9}" for ms, _ in boto3))
        for module in [*HANDLERS, "pydantic", "pixelbridge.convert.pipeline"]:
            timings = import_ms(trees, f"import boto3, {module}", runs, pyc)
            cells = [
                f" {ms:>11.0f} {ms - base:>+6.0f} {cpu - base_cpu:>+9.0f}"
                for (ms, cpu), (base, base_cpu) in zip(timings, boto3, strict=True)
            ]
            print(f"{module:<36}" + "".join(cells))
    for label, (python, _, functions) in zip(labels, trees, strict=True):
        raw, zipped, botocores = package_mb(python, functions)
        print(
            f"package ({label}): {raw:.1f} MB unzipped, {zipped:.1f} MB zipped; botocore copies: {botocores}"
        )


if __name__ == "__main__":
    main()
