"""Children that end with the process that made them.

A run starts servers, Locust and browsers. Each ``with`` block stops its child on the way out, but a
signal that lands while a child is being made (forked, its ``Popen`` not yet returned) unwinds past the
block that would stop it: CI found a Locust left running that way after a SIGTERM. Linux's parent-death
signal closes that gap: the kernel kills the child when its parent goes, however it goes.

SIGTERM unwinds a run like Ctrl-C (``exit_on_sigterm``): its ``with`` blocks stop the server and remove the
namespace. The handler raises ``SystemExit`` wherever the main thread is, and where that is a finalizer
(``__del__``, a weakref callback) Python prints "Exception ignored" and goes on: the run would go on to its
end. So the handler also sets a flag, and a run's long waits (``wait_for``) check it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
STOP_POLL_S = 0.25
"""How often a long wait looks for a SIGTERM whose ``SystemExit`` was swallowed."""
_sigterm_received = threading.Event()
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


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the run's servers stop and its namespace is removed; SIGUSR1 prints
    where every thread is to stderr (``kill -USR1 PID``: what a run that seems stuck is waiting for)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def _on_sigterm(signum: int, frame: object) -> None:
    _sigterm_received.set()
    raise SystemExit(128 + signum)


def wait_for(child: subprocess.Popen, timeout_s: float) -> int:
    """``child.wait(timeout_s)`` that a SIGTERM ends even when its ``SystemExit`` was swallowed: the exit
    code, or ``TimeoutExpired``, or ``SystemExit`` (the caller's ``with`` blocks then end the child)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if _sigterm_received.is_set():
            raise SystemExit(128 + signal.SIGTERM)
        try:
            return child.wait(max(0.0, min(STOP_POLL_S, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
