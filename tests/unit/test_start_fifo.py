"""How `start` reads a failing init's report from exec.fifo: the 'E' and the
message may arrive in separate writes (an init from an older build wrote them
so), and the fifo is non-blocking, so the message must be read up to EOF,
not with one read that can find the pipe momentarily empty."""

import os
import threading
import time

from ocirun.verbs.start import _read_rest


def _writer(wfd, parts, gap):
    for p in parts:
        os.write(wfd, p)
        time.sleep(gap)
    os.close(wfd)


def test_message_written_after_a_pause_is_read_whole():
    r, w = os.pipe()
    os.set_blocking(r, False)
    t = threading.Thread(target=_writer, args=(w, [b"E", b"hook failed: ", b"exit status 2"], 0.05))
    t.start()
    try:
        while True:  # what start does: poll, then read the one status byte
            try:
                first = os.read(r, 1)
                break
            except BlockingIOError:
                time.sleep(0.001)
        assert first == b"E"
        assert _read_rest(r) == b"hook failed: exit status 2"
    finally:
        t.join()
        os.close(r)


def test_a_writer_that_never_closes_does_not_hang_start():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.write(w, b"partial")
    got = []
    try:
        t = threading.Thread(target=lambda: got.append(_read_rest(r, timeout_ms=200)), daemon=True)
        t.start()
        t.join(30)
        assert not t.is_alive() and got == [b"partial"]
    finally:
        os.close(w)
        os.close(r)
