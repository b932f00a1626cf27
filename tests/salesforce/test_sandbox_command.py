"""`erasure salesforce sandbox --seed demo` as a script sees it: through a pipe, not a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from erasure.salesforce.sandbox.seed import DEMO_USERS


def test_the_demo_table_is_whole_on_a_pipe_and_names_a_key_where_no_phone_reaches(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "erasure.cli",
            "salesforce",
            "sandbox",
            "--port",
            "0",
            "--seed",
            "demo",
            "--cert-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                break
    finally:
        proc.terminate()
        _, table = proc.communicate(timeout=20)
    rows = [line.split("\t") for line in table.splitlines() if line[:1].isdigit()]
    assert len(rows) == DEMO_USERS, table
    by_n = {int(row[0]): row for row in rows}
    header = next(line for line in table.splitlines() if line.startswith("n\t")).split("\t")
    submit = header.index("submit as")
    # n = 1: a web chat user whose contact holds phone and email: submitted by phone.
    assert by_n[1][submit] == "+14155550001"
    assert by_n[1][header.index("email")] == "demo.user1@example.com"
    # n = 3: a WhatsApp user with no contact: no phone field holds it, its platform key does.
    assert by_n[3][submit] == "whatsapp:+14155550003"
    assert "-" not in {row[submit] for row in rows}
    assert all(len(row) == len(header) for row in rows)  # nothing cut or wrapped
