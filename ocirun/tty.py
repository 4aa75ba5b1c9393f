"""`run` in the foreground with process.terminal: relay our terminal to the
container's pty (raw mode, window size on SIGWINCH), as runc does."""

import os
import select


def copy_winsize(master, src=0):
    """Give the container's pty our terminal's size (before it starts)."""
    import fcntl
    import termios

    try:
        ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


class Relay:
    def __init__(self, master):
        self.master = master

    def run_until_exit(self, pid):
        import _signal
        import termios
        import tty

        saved = None
        if os.isatty(0):
            saved = termios.tcgetattr(0)
            tty.setraw(0)
            self._resize()
            _signal.signal(28, lambda *_: self._resize())
        try:
            self._pump(pid)
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            os.close(self.master)

    def _resize(self):
        copy_winsize(self.master)

    def _pump(self, pid):
        from ocirun import procs

        p = select.poll()
        p.register(self.master, select.POLLIN)
        gone = procs.hangup_fd()
        if gone is not None:
            # warm: stop relaying the caller's terminal once `ocirun` is gone
            p.register(gone, select.POLLIN)
        stdin_open = True
        try:
            p.register(0, select.POLLIN)
        except (OSError, ValueError):
            stdin_open = False
        while True:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == gone:
                    return
                if fd == self.master:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
                elif stdin_open:
                    data = os.read(0, 65536) if ev & select.POLLIN else b""
                    if not data:
                        p.unregister(0)
                        stdin_open = False
                    else:
                        os.write(self.master, data)
