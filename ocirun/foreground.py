"""What `run` and `exec` share when they stay in the foreground: forwarding
the signals they receive to the container process and waiting for the exit
status (whether the final execve happened is launch.exec_error)."""

import os

from ocirun import procs

# CHLD, WINCH (a terminal resize, handled by the relay), URG, KILL, STOP
NO_FORWARD = {17, 28, 23, 9, 19}


class SignalForwarder:
    """Forward every catchable signal to `target` once it is known; signals
    that arrive before are delivered then.  Restores the handlers on exit."""

    def __init__(self):
        self.target = 0
        self.pending = []
        self.old = {}

    def _handler(self, sig, _frame):
        if self.target:
            try:
                os.kill(self.target, sig)
            except ProcessLookupError:
                pass
        else:
            self.pending.append(sig)

    def set_target(self, pid):
        self.target = pid
        if procs.warm():
            procs.forward(procs.FWD_TARGET, pid)
            return
        for sig in self.pending:
            self._handler(sig, None)
        self.pending = []

    def __enter__(self):
        import _signal

        if procs.warm():
            # the `ocirun` process is the front-end: it receives the
            # caller's signals and forwards them itself (csrc/front/warm.c)
            procs.forward(procs.FWD_START)
            return self
        for s in range(1, 32):
            if s in NO_FORWARD:
                continue
            try:
                self.old[s] = _signal.signal(s, self._handler)
            except (OSError, ValueError):
                pass
        return self

    def __exit__(self, *exc):
        import _signal

        if procs.warm():
            procs.forward(procs.FWD_STOP)
            return False
        for s, h in self.old.items():
            try:
                _signal.signal(s, h)
            except (OSError, ValueError, TypeError):
                pass
        return False


def wait_status(pid, master=None):
    """Relay the terminal (if any) until the process exits, then its status:
    the exit code, or 128+N when killed by signal N."""
    if master is not None:
        from ocirun.tty import Relay

        Relay(master).run_until_exit(pid)
    while True:
        try:
            _, st = procs.waitpid(pid)
        except ChildProcessError:
            return 0
        if os.WIFEXITED(st):
            return os.WEXITSTATUS(st)
        if os.WIFSIGNALED(st):
            return 128 + os.WTERMSIG(st)
