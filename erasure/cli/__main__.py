"""`python -m erasure.cli`: the same as the `erasure` command."""

from erasure.cli import main

main()
