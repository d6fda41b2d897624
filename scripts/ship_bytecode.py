"""Compile every module of a ``sam build`` output so cold starts do not compile them.

aws-lambda-builders leaves ``*.pyc`` out and ``/var/task`` is read-only, so without this every module
(Powertools, pydantic, ours) is compiled at each cold start (README, "Cold starts"). The bytecode is
hash-based and unchecked: ``sam package`` dates every zip entry 1980, which would make timestamp-checked
``.pyc`` look stale and be ignored. Run it with the runtime's Python (3.13): bytecode is per version.

Usage: python3.13 scripts/ship_bytecode.py .aws-sam/build [--python-version 3.13]
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import sys
from pathlib import Path


def ship_bytecode(build_dir: Path, *, workers: int = 0) -> bool:
    return compileall.compile_dir(
        str(build_dir),
        quiet=1,
        workers=workers,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path, help="the sam build output, e.g. .aws-sam/build")
    parser.add_argument(
        "--python-version", default="3.13", help="the Lambda runtime's Python (bytecode is per version)"
    )
    parser.add_argument("--workers", type=int, default=0, help="compiling processes (0: one per CPU)")
    args = parser.parse_args(argv)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != args.python_version:
        print(f"ship_bytecode: run it with Python {args.python_version}, not {running}", file=sys.stderr)
        return 2
    if not args.build_dir.is_dir():
        print(f"ship_bytecode: {args.build_dir} is not a directory (run sam build first)", file=sys.stderr)
        return 2
    return 0 if ship_bytecode(args.build_dir, workers=args.workers) else 1


if __name__ == "__main__":
    sys.exit(main())
