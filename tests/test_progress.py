"""Progress in a log file (issue 16): plain lines, never carriage-return frames, at most one every N seconds.

``core.progress.progress`` is the one helper every command shows progress with: a tqdm bar on a
terminal, otherwise :class:`core.progress.PlainProgress`, tested here with a fake clock, and through
``network.evaluate`` run as a user would with its output redirected to a file.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from core.progress import INTERVAL_ENV, PlainProgress, progress
from tests.checkpoint_files import write_tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_writer_writes_one_line_per_interval_and_one_at_the_end():
    clock, out = FakeClock(), io.StringIO()
    bar = PlainProgress(total=10, desc="rooms", unit="room", interval_s=10, stream=out, clock=clock)
    for _ in range(4):                       # 4 updates in 8 s: nothing yet
        clock.now += 2
        bar.update(1)
    assert out.getvalue() == ""
    clock.now += 2                           # 10 s after the start: the first line
    bar.set_postfix(frames_per_s="0.50")
    bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines == ["rooms: 5/10 room (50%), 2 s/room, 10 s elapsed, about 10 s left, frames_per_s=0.50"]
    for _ in range(4):                       # 8 s more: still within the interval of the last line
        clock.now += 2
        bar.update(1)
    assert len(out.getvalue().splitlines()) == 1
    clock.now += 2
    bar.update(1)                            # 10 s after the last line: the second, at 10/10
    bar.close()                              # the last line already showed the end: no repeat
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[1] == "rooms: 10/10 room (100%), 2 s/room, 20 s elapsed, frames_per_s=0.50"
    assert len(lines) == 2
    assert "\r" not in out.getvalue()


def test_plain_writer_over_an_iterable_ends_with_a_line_and_counts_without_a_total():
    clock, out = FakeClock(), io.StringIO()

    def batches():                           # no len(): no total, no percentage, no time left
        for i in range(30):
            clock.now += 1
            yield i

    seen = list(PlainProgress(batches(), desc="val", unit="batch", interval_s=10, stream=out, clock=clock))
    assert seen == list(range(30))
    lines = out.getvalue().splitlines()
    assert lines[0] == "val: 10 batch, 1 batch/s, 10 s elapsed"
    assert lines[-1] == "val: 30 batch, 1 batch/s, 30 s elapsed"
    assert len(lines) == 3


def test_plain_writer_stops_early_and_says_where():
    clock, out = FakeClock(), io.StringIO()
    bar = PlainProgress(range(100), desc="pretrain 1/2", interval_s=10, stream=out, clock=clock)
    for i in bar:                            # as --max-steps does
        clock.now += 0.5
        if i == 5:
            break
    del i
    assert out.getvalue().splitlines() == ["pretrain 1/2: 5/100 it (5%), 1.67 it/s, 3 s elapsed, about 57 s left"]


def test_disabled_writes_nothing_and_a_log_gets_the_plain_writer(monkeypatch):
    out = io.StringIO()
    bar = progress(range(3), desc="x", enabled=False, stream=out)
    assert list(bar) == [0, 1, 2] and out.getvalue() == ""
    assert isinstance(progress(range(3), stream=io.StringIO()), PlainProgress)      # not a terminal

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from tqdm import tqdm
    assert isinstance(progress(range(3), stream=Terminal()), tqdm)
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert PlainProgress(total=1).interval_s == 2.5
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert PlainProgress(total=1).interval_s == 10.0


def test_a_command_redirected_to_a_file_writes_progress_lines_without_carriage_returns(tmp_path, posekernel_root):
    """``network.evaluate`` with progress on (no ``--no-progress``), its output going to a file."""
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt", data={
        "source": "real", "pair_counts": [4], "finetune_environments": ["environment1"],
        "test_environments": ["environment3"]})
    log = tmp_path / "evaluate.log"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", INTERVAL_ENV: "0"}
    with open(log, "wb") as handle:
        code = subprocess.run(
            [sys.executable, "-m", "network.evaluate", "--checkpoint", str(checkpoint), "--data", str(posekernel_root),
             "--environments", "environment3", "--methods", "ours", "vision_avg_height", "--batch-size", "1",
             "--out", str(tmp_path / "results")],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, timeout=600,
        ).returncode
    text = log.read_bytes().decode()
    assert code == 0, text[-3000:]
    assert "\r" not in text
    lines = [line for line in text.splitlines() if line.startswith("ours: ")]
    assert lines, text[-3000:]
    assert lines[-1].startswith("ours: 2/2 it (100%)"), lines
