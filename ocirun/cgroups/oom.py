"""OOM notifications for `events`: an eventfd registered on
memory.oom_control through cgroup.event_control on v1 (the kernel also
signals it when the group is removed), the oom_kill counter of memory.events
on v2."""

import os
import select
import time

from ocirun.host import controller_dir, read as _read, write as _write


def _oom_kills(path):
    for line in (_read(path) or "").splitlines():
        k, _, v = line.partition(" ")
        if k == "oom_kill" and v.strip().isdigit():
            return int(v)
    return 0


class OOMWatch:
    def __init__(self, cg):
        self.cg = cg
        self.dir = controller_dir(cg, "memory")
        self.efd = None
        self.events = None
        self.count = 0
        if self.dir is None:
            return
        if cg["version"] == 1:
            efd = os.eventfd(0, os.EFD_CLOEXEC)
            ocfd = os.open(os.path.join(self.dir, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(os.path.join(self.dir, "cgroup.event_control"), f"{efd} {ocfd}")
            except OSError:
                os.close(efd)
                efd = None
            finally:
                os.close(ocfd)
            self.efd = efd
        else:
            self.events = os.path.join(self.dir, "memory.events")
            self.count = _oom_kills(self.events)

    def alive(self):
        return all(os.path.isdir(p) for p in self.cg["paths"].values())

    def wait(self, timeout):
        """Block up to timeout seconds; returns the number of OOM events seen."""
        if self.efd is not None:
            p = select.poll()
            p.register(self.efd, select.POLLIN)
            if not p.poll(int(timeout * 1000)):
                return 0
            n = os.eventfd_read(self.efd)
            return n if self.alive() else 0
        if self.events is None:
            time.sleep(timeout)
            return 0
        deadline = time.monotonic() + timeout
        while True:
            cur = _oom_kills(self.events)
            if cur > self.count:
                n, self.count = cur - self.count, cur
                return n
            left = deadline - time.monotonic()
            if left <= 0 or not self.alive():
                return 0
            time.sleep(min(left, 0.2))

    def close(self):
        if self.efd is not None:
            os.close(self.efd)
            self.efd = None
