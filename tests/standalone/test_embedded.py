"""Where the embedded Redis's Unix socket lives: in the data directory when the path fits in a
socket address, else in one private directory per data directory (the same on every start, so a
killed run leaves nothing that piles up), never in a directory others can write to."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from erasure.standalone.datadir import DataDir
from erasure.standalone.embedded import socket_dir
from erasure.standalone.supervisor import StartupFailed


def test_the_socket_lives_in_the_data_directory_when_its_path_fits(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.root.mkdir()
    chosen = socket_dir(data)
    assert chosen == data.root / "run"
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700


def test_a_long_data_directory_gets_one_private_socket_directory(tmp_path: Path) -> None:
    data = DataDir(tmp_path / ("d" * 120))
    data.root.mkdir()
    chosen = socket_dir(data)
    try:
        assert not chosen.is_relative_to(data.root)
        assert socket_dir(data) == chosen  # the same on the next start
        assert stat.S_IMODE(chosen.stat().st_mode) == 0o700
        assert len(str(chosen / "redis.sock")) < 100
        chosen.chmod(0o777)  # someone else could plant a socket there: refuse it
        with pytest.raises(StartupFailed):
            socket_dir(data)
    finally:
        shutil.rmtree(chosen)
