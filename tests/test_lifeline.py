"""A child made with ``die_with_parent`` does not outlive its parent, however the parent ends."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.helpers import ends_within

PARENT = """
import subprocess, sys, time
from bulkbench.lifeline import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=die_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_is_killed_when_its_parent_is() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert not ends_within(child, 0.2)  # alive while its parent is
    parent.send_signal(signal.SIGKILL)  # no handler, no cleanup: only the kernel can end the child now
    parent.wait(10)
    assert ends_within(child, 10)


SWALLOWED = """
import os, signal, subprocess, sys
from bulkbench.lifeline import exit_on_sigterm, wait_for
exit_on_sigterm()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])

class Finalizer:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # the handler runs here, inside __del__: Python swallows its SystemExit
            pass

Finalizer()
print("went on", flush=True)
try:
    wait_for(child, 120)
finally:
    child.kill()
"""


def test_a_sigterm_whose_exit_a_finalizer_swallowed_still_ends_the_wait() -> None:
    """CI once saw a run go on for a minute after SIGTERM. A raise that lands in ``__del__`` is one way:
    Python prints "Exception ignored" and the run would go on to its child's end (120 s here)."""
    parent = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, timeout=60)
    assert "went on" in parent.stdout and "Exception ignored" in parent.stderr, parent.stderr
    assert parent.returncode == 128 + signal.SIGTERM, parent.stderr
