"""The getting-started guide's commands, run in order, as a new user would type them.

Every line starting with ``$ `` inside a fence whose info string is ``console`` is a
command; the lines after it are its output as the guide shows it. Each shown line must
appear in what the command really prints (hashes and timings aside; lines with ``…`` are
abridged and skipped, and so are blocks marked ``console abridged``), so the guide cannot
drift from the CLI. In blocks marked
``console expect-fail`` the command must fail with a user error (exit 2). ``cd DIR`` changes the directory of the
following commands; ``seeknal`` and ``python`` are the current venv's.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
GUIDES_DIR = DOCS_DIR / "guides"
GUIDE = GUIDES_DIR / "getting-started.md"
# Every guide whose commands a new user would type; each runs in its own empty directory.
# Guides and tutorials alike, by their path under docs/ ("guides/rules.md").
GUIDES = sorted(
    str(p.relative_to(DOCS_DIR))
    for d in ("guides", "tutorials")
    for p in (DOCS_DIR / d).glob("*.md")
)
BIN = Path(sys.executable).parent
TIMEOUT = 300
USER_ERROR = 2
FENCE = re.compile(r"^(\s*)```(.*)$")
# Hashes, timings and timestamps differ from run to run; compare the error line without them.
VOLATILE = re.compile(r"[0-9a-f]{12,64}|\d+\.\d+s|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass(frozen=True)
class Command:
    """One ``$ `` line of the guide."""

    text: str
    line: int
    expect_fail: bool
    output: tuple[str, ...]
    abridged: bool = False
    exit_code: int = 2


def extract_commands(markdown: str) -> list[Command]:
    """Every ``$ `` command of the ``console`` blocks of ``markdown``, in order.

    >>> extract_commands("```console\\n$ seeknal run\\nbuilt 1\\n```\\n")[0].text
    'seeknal run'
    """
    commands: list[Command] = []
    lines = markdown.splitlines()
    info: str | None = None
    pending: list[str] = []
    start = 0
    output: list[str] = []
    expect_fail = False
    abridged = False
    exit_code = USER_ERROR

    def flush() -> None:
        if pending:
            commands.append(
                Command(" ".join(pending), start, expect_fail, tuple(output), abridged, exit_code)
            )

    for number, raw in enumerate(lines, start=1):
        fence = FENCE.match(raw)
        if fence:
            if info is None:
                info = fence.group(2).strip()
                expect_fail = "expect-fail" in info.split()[1:]
                # `console expect-fail exit=1`: a failed run rather than a user error.
                codes = [w[5:] for w in info.split()[1:] if w.startswith("exit=")]
                exit_code = int(codes[0]) if codes else USER_ERROR
                abridged = "abridged" in info.split()[1:]
            else:
                flush()
                pending, output, info = [], [], None
            continue
        if info is None or not info.startswith("console"):
            continue
        line = raw.strip()
        if line.startswith("$ ") and not (pending and pending[-1].endswith("\\")):
            flush()
            pending, output, start = [line[2:]], [], number
        elif pending and pending[-1].endswith("\\"):
            pending[-1] = pending[-1][:-1].rstrip()
            pending.append(line)
        elif pending:
            output.append(line)
    return commands


def resolve_argv(text: str) -> list[str]:
    """Split a command like a POSIX shell; point ``seeknal``/``python`` at this venv."""
    argv = shlex.split(text, comments=True)
    if argv and argv[0] == "seeknal":
        argv[0] = str(BIN / "seeknal")
    elif argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def guide_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEKNAL_")}
    # The test's own compile cache (tests/conftest.py), never the user's real one.
    env["SEEKNAL_CACHE_DIR"] = os.environ["SEEKNAL_CACHE_DIR"]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


def normalize(text: str) -> str:
    return VOLATILE.sub("#", text).strip()


def test_guide_commands_are_well_formed() -> None:
    commands = extract_commands(GUIDE.read_text(encoding="utf-8"))
    texts = [c.text for c in commands]
    assert texts[:2] == ["seeknal init shop --example", "cd shop"]
    for verb in ("compile", "execute", "run", "show", "query", "lineage"):
        assert any(t.startswith(f"seeknal {verb}") for t in texts), verb
    failing = [c for c in commands if c.expect_fail]
    assert failing, "the guide shows what an error looks like"
    for command in failing:
        assert any("error:" in line for line in command.output), command.text
    for command in commands:
        argv = resolve_argv(command.text)
        assert argv, command
        # Portable commands only: no pipes, redirections or shell-only syntax.
        assert not {"|", ">", ">>", "&&", ";"} & set(argv), command.text
        assert argv[0] in {"cd", str(BIN / "seeknal"), sys.executable}, command.text


@pytest.mark.slow
@pytest.mark.parametrize("guide", GUIDES)
def test_guide_runs_in_order(guide: str, tmp_path: Path) -> None:
    seeknal = BIN / "seeknal"
    assert seeknal.exists(), f"{seeknal} is missing: pip install -e . in this venv"
    commands = extract_commands((DOCS_DIR / guide).read_text(encoding="utf-8"))
    cwd = tmp_path
    env = guide_environment()
    transcript: list[str] = []
    for command in commands:
        where = f"{guide}:{command.line}: $ {command.text}"
        argv = resolve_argv(command.text)
        if argv[0] == "cd":
            cwd = (cwd / argv[1]).resolve()
            assert cwd.is_dir(), f"{where}: no directory {cwd}"
            transcript.append(f"$ {command.text}")
            continue
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        printed = done.stdout + done.stderr
        transcript.append(f"$ {command.text}\n{printed.rstrip()}\n[exit {done.returncode}]")
        context = "\n\n".join(transcript[-4:])
        assert "Traceback" not in printed, f"{where} printed a traceback:\n{context}"
        if command.expect_fail:
            assert done.returncode == command.exit_code, (
                f"{where} should fail with exit {command.exit_code}:\n{context}"
            )
            shown = next(line for line in command.output if "error:" in line)
            # The message must match; a column shown in the guide may drift.
            shown = shown[shown.index("error:") :]
            assert normalize(shown) in normalize(printed), (
                f"{where}: the guide shows {shown!r}, the command printed:\n{context}"
            )
        else:
            assert done.returncode == 0, f"{where} failed:\n{context}"
        printed_lines = {normalize(line) for line in printed.splitlines()}
        for shown_line in () if command.abridged else command.output:
            if "…" in shown_line or not shown_line.strip():
                continue
            assert normalize(shown_line) in printed_lines, (
                f"{where}: the guide shows {shown_line!r}, the command printed:\n{context}"
            )
