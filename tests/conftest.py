"""Shared fixtures: example projects copied to a temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "projects"
EXAMPLE = Path(__file__).parents[1] / "src" / "seeknal" / "examples" / "shop"


def copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("target"))
    return dest


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh copy of the example shop project."""
    return copy_project(EXAMPLE, tmp_path / "shop")


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    return copy_project(FIXTURES / "minimal", tmp_path / "minimal")
