"""ocirun/front.py: what the C front-end hands to Python in the environment.
Only a child of this process is ever taken as the primer (and signalled)."""

import os
import subprocess

from ocirun import front


def test_takes_its_own_child_and_stops_it(monkeypatch):
    child = subprocess.Popen(["sleep", "30"])
    try:
        monkeypatch.setenv("_OCIRUN_PRIMER", str(child.pid))
        front.take()
        assert "_OCIRUN_PRIMER" not in os.environ
        assert front._primer == child.pid
        front.stop_primer()
        # killed and already reaped: not even a zombie is left
        assert not os.path.exists(f"/proc/{child.pid}")
        child.returncode = -9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_never_takes_a_process_that_is_not_its_child(monkeypatch):
    monkeypatch.setenv("_OCIRUN_PRIMER", "1")
    front.take()
    assert front._primer is None
    front.stop_primer()  # nothing to signal
    assert os.path.exists("/proc/1")


def test_subreaper_flag_is_taken_and_removed(monkeypatch):
    monkeypatch.setenv("_OCIRUN_SUBREAPER", "1")
    front.take()
    assert front._subreaper and "_OCIRUN_SUBREAPER" not in os.environ
    monkeypatch.setattr(front, "_subreaper", False)
