"""Children that end with the process that made them.

A run starts servers, Locust and browsers. Each ``with`` block stops its child on the way out, but a
signal that lands while a child is being made (forked, its ``Popen`` not yet returned) unwinds past the
block that would stop it: CI found a Locust left running that way after a SIGTERM. Linux's parent-death
signal closes that gap: the kernel kills the child when its parent goes, however it goes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
"""Looked up here, not in the child: between fork and exec the child should do as little as it can."""


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGKILL this child when the thread that made it ends.

    The signal follows the *thread*, so make long-lived children from the main thread (as the CLI does).
    It survives ``exec``, so a child started through ``ip netns exec`` keeps it. It is not inherited:
    a child's own children (Locust's workers, Playwright's driver and Chromium) end as that child
    arranges (Playwright's driver is meant to close its browsers when its pipe to us closes)."""
    if _prctl is None:
        return
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")  # Popen raises it in the parent
    if os.getppid() == 1:  # the parent died between fork and prctl: the signal will never come
        os._exit(1)
