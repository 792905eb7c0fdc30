"""The command line tunes the garbage collector before it imports anything else."""

from __future__ import annotations

import subprocess
import sys


def _threshold(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_entry_point_collects_rarely() -> None:
    shown = _threshold("import gc; from seeknal.cli.main import main; print(gc.get_threshold())")
    assert shown == "(200000, 30, 30)"


def test_the_library_leaves_the_collector_alone() -> None:
    untouched = _threshold("import gc; print(gc.get_threshold())")
    shown = _threshold(
        "import gc; import seeknal.compiler, seeknal.runtime; print(gc.get_threshold())"
    )
    assert shown == untouched
    assert untouched != "(200000, 30, 30)"
