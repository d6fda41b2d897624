"""The IAM usage table: actions a function used next to what its policy grants."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pixelbridge_local import iam_report


def test_the_table_marks_unused_grants_and_denied_calls(tmp_path: Path) -> None:
    granted = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}
    ]
    used = Counter({("s3:GetObject", "arn:aws:s3:::b/k1"): 2, ("s3:GetObject", "arn:aws:s3:::b/k2"): 1})
    iam_report.record("ReportProbeFunction", granted, used, [("s3:DeleteObject", "arn:aws:s3:::b/k1")])
    written = iam_report.write(tmp_path / "iam.md")
    assert written is not None
    section = written.read_text(encoding="utf-8").split("## ReportProbeFunction")[1].split("## ")[0]
    assert "| s3:GetObject | 3 | 2 | arn:aws:s3:::b/k1 |" in section
    assert "| s3:DeleteObject (DENIED) | 1 | 1 |" in section
    assert "| s3:GetObject | arn:aws:s3:::b/* | yes |" in section
    assert "| s3:PutObject | arn:aws:s3:::b/* | no |" in section
