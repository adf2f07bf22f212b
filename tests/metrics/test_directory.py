"""The multiprocess directory: one per ``signoff serve``, those of dead processes removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from signoff.metrics import directory


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_prepare_makes_a_fresh_directory_and_removes_the_dead_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Empty reads as unset; setenv (unlike delenv of a missing name) makes monkeypatch restore
    # the variable afterwards, so what prepare sets cannot leak into later tests' processes.
    monkeypatch.setenv(directory.ENV, "")
    root = tmp_path / "metrics"
    dead = root / str(_dead_pid())
    alive = root / str(os.getppid())  # our parent: alive, another serve's
    for old in (dead, alive):
        old.mkdir(parents=True)
        (old / "counter_1.db").write_bytes(b"x")
    mine = root / str(os.getpid())
    mine.mkdir()
    (mine / "histogram_stale.db").write_bytes(b"x")  # a dead process's, with our pid

    made = directory.prepare(tmp_path)

    assert made == mine
    assert os.environ[directory.ENV] == str(mine)
    assert list(mine.iterdir()) == []
    assert not dead.exists()
    assert (alive / "counter_1.db").exists()


def test_an_operators_directory_is_left_to_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(directory.ENV, str(tmp_path / "theirs"))
    assert directory.prepare(tmp_path) is None
    assert not (tmp_path / "metrics").exists()
