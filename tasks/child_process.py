"""Child processes that end with the process that started them, however it ends."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` that makes the child get SIGTERM when its parent dies, even by SIGKILL.

    Linux delivers the signal when the *thread* that forked exits, so start such children from
    a thread that lives as long as the process (the main thread). Elsewhere it does nothing.
    """
    parent = os.getpid()
    try:
        # Looked up here, before the fork: the child should not load libraries.
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died between the fork and the prctl: no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
