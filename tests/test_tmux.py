"""The real `rnntui` command in a terminal (tmux): it starts training, a sample appears, a typed prompt gets a
continuation, and `q` exits cleanly, leaving no process behind."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


def rnntui_command() -> str:
    script = Path(sys.executable).parent / "rnntui"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m rnntui.cli"


class Tmux:
    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True,
                              text=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def wait_for(self, pattern: str, what: str, timeout: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.screen(), re.MULTILINE)
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{self.screen()}")


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_rnntui_in_a_terminal(tmp_path, small_text):
    home = tmp_path / "home"
    marker = f"RNNTUI_HOME={home}"
    tmux = Tmux(f"rnntui-test-{os.getpid()}")
    command = (f"env {shlex.quote(marker)} RNNTUI_LOAD_PLUGINS= TERM=xterm-256color {rnntui_command()} "
               f"{shlex.quote(str(small_text))} --layers 1 --hidden 32 --seq-len 16 --batch-size 4 "
               "--eval-every 20 --sample-every 20 --sample-length 40; echo RNNTUI-EXIT=$?; sleep 600")
    tmux("new-session", "-d", "-s", "app", "-x", "100", "-y", "30", command)
    try:
        tmux.wait_for(r"● training", "the run to start")
        tmux.wait_for(r"Samples · [1-9]", "the first sample")
        step = r"^ step ([\d,]+)"  # the status bar's second line
        first = int(tmux.wait_for(step, "the step count").group(1).replace(",", ""))
        deadline = time.monotonic() + 60
        while int(tmux.wait_for(step, "the step count").group(1).replace(",", "")) <= first:
            assert time.monotonic() < deadline, "the step count does not rise"
            time.sleep(0.25)

        tmux("send-keys", "-t", "app", "i")
        tmux.wait_for(r"⏎ Generate", "the prompt to take the keys")  # the footer shows the prompt's keys
        tmux("send-keys", "-t", "app", "-l", "the quick ")
        tmux("send-keys", "-t", "app", "Enter")
        written = tmux.wait_for(r"([\d,]+) chars written", "a continuation of the prompt")
        assert int(written.group(1).replace(",", "")) == 500
        assert "the quick" in tmux.screen()

        tmux("send-keys", "-t", "app", "Escape")  # leaves the prompt
        # wait until the Escape has been read on its own (the footer shows the app's keys again): an Escape
        # followed at once by q would read as alt+q
        tmux.wait_for(r"^(?!.*⏎ Generate).*\bq Quit", "the prompt to give the keys back")
        tmux("send-keys", "-t", "app", "q")
        tmux.wait_for(r"Quit and stop it\?", "the quit dialog (a run is training)")
        tmux("send-keys", "-t", "app", "k")
        tmux.wait_for(r"RNNTUI-EXIT=0", "a clean exit")
        deadline = time.monotonic() + 30
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with(marker) == [], "no rnntui process (app or run) is left behind"
        assert list(home.glob("runs/*/checkpoints/step-*.json")), "k kept a final checkpoint"
    finally:
        subprocess.run(["tmux", "-L", tmux.socket, "kill-server"], capture_output=True)
