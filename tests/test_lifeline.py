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
