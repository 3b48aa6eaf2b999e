"""Helpers for the table-driven bad-input tests: run a command, snapshot a folder, check a refusal.

A refusal is judged as a user sees it: the exit code, one line starting with ``error:`` that names
the problem (no traceback), and every file that was on disk before left byte for byte as it was.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:") or ": error:" in line]


def call_main(module: str, argv: list[str], cwd: Path | None = None) -> Outcome:
    """Run ``module.main(argv)`` in this process (fast); argparse's SystemExit becomes the code."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = importlib.import_module(module).main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(old)
    return Outcome(int(code or 0), out.getvalue(), err.getvalue())


def run_module(module: str, argv: list[str], cwd: Path | None = None, timeout: float = 600,
               env: dict | None = None) -> Outcome:
    """Run ``python -m module argv`` as a user would (a separate process)."""
    environ = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=environ, stdin=subprocess.DEVNULL)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots``: path -> sha1 of its bytes (a folder's files, or one file)."""
    files = {}
    for root in roots:
        root = Path(root)
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in paths:
            files[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return files


def assert_refused(outcome: Outcome, *words: str, code: int = 2) -> None:
    """Exit ``code``, no traceback, and one error line that contains every one of ``words``."""
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.code == code, (outcome.code, outcome.stderr[-2000:])
    lines = outcome.error_lines
    assert len(lines) == 1, outcome.stderr[-2000:]
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
