"""Run every benchmark and write its output into the README's Performance section.

    python -m bench [--full] [--only intake,audit,...] [--no-readme]

Each script prints the machine and its baseline measured in the same run next to its figure; that
output replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in README.md
(the markers are added at the end of the section on first use). Default sizes are modest so the
whole run takes a few minutes; `--full` uses the sizes the README's figures were measured with.
Never run in CI: timings on shared runners mean nothing, and nothing here is pass/fail.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: name -> (module, modest arguments, full-size arguments)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "intake": ("bench.intake", ["--seconds", "6"], ["--seconds", "6", "--rounds", "6"]),
    "scale": ("bench.scale", ["--samples", "8"], ["--samples", "15"]),
    "audit": ("bench.audit", ["--leaves", "300000"], ["--leaves", "1000000"]),
    "audit_append": ("bench.audit_append", ["--seconds", "4"], ["--seconds", "8"]),
    "pipeline": (
        "bench.pipeline",
        ["--hour-s", "6", "--windows", "1", "--latency-samples", "3"],
        ["--hour-s", "12", "--windows", "2"],
    ),
    "soak": (
        "bench.soak",
        ["--requests", "100", "--kills", "6"],
        ["--requests", "500", "--kills", "20"],
    ),
}


def run(name: str, *, full: bool) -> str:
    module, modest, full_args = BENCHES[name]
    args = full_args if full else modest
    print(f"== {name}: python -m {module} {' '.join(args)}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(f"{name} failed (exit {done.returncode})")
    return f"`python -m {module} {' '.join(args)}`:\n\n```\n{done.stdout.strip()}\n```"


def write_block(text: str, name: str, body: str) -> str:
    """`text` with the block between the markers of `name` replaced by `body` (the markers are
    appended at the end of the Performance section when missing)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    section = text.find("## Performance")
    following = text.find("\n## ", section + 1) if section >= 0 else -1
    if following < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    return text[:following].rstrip("\n") + "\n\n" + block + "\n" + text[following:]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the README's full sizes (slow)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated names")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    options = parser.parse_args()
    names = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    print(describe(), flush=True)
    results = {name: run(name, full=options.full) for name in names}
    if options.no_readme:
        return
    text = README.read_text()
    text = write_block(text, "machine", f"Last `python -m bench` run on: {describe()}.")
    for name, body in results.items():
        text = write_block(text, name, body)
    README.write_text(text)
    print(f"README.md updated: {', '.join(results)}")


if __name__ == "__main__":
    main()
