"""NOTIFY_SOCKET passthrough: the container's READY=1 reaches the caller's
socket with MAINPID, then a BARRIER=1 the caller acknowledges (as systemd)."""

import array
import os
import shutil
import socket
import subprocess
import threading

import pytest

SENDER = r"""
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
  const char *p = getenv("NOTIFY_SOCKET");
  if (!p) return 2;
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return 3;
  return send(s, "STATUS=up\nREADY=1", 17, 0) == 17 ? 0 : 4;
}
"""


@pytest.fixture
def sender(env):
    if not shutil.which("gcc"):
        pytest.skip("gcc needed to build the test's sd_notify sender")
    src = os.path.join(env.tmp, "ready.c")
    with open(src, "w") as f:
        f.write(SENDER)
    out = os.path.join(env.rootfs, "notify-ready")
    r = subprocess.run(["gcc", "-static", "-O1", "-o", out, src], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("static linking unavailable: " + r.stderr[-200:])
    return "/notify-ready"


def test_notify_socket_ready_mainpid_barrier(env, sender):
    host = os.path.join(env.tmp, "host-notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(host)
    env.cfg["process"]["args"] = ["sh", "-c", f"echo $NOTIFY_SOCKET > /tmp/env; grep ' /run/notify ' "
                                  f"/proc/self/mountinfo > /tmp/mnt; {sender}; sleep 100"]
    env.cfg["root"]["readonly"] = False
    env.write()
    cid = env.new_id()
    envv = dict(os.environ, NOTIFY_SOCKET=host)
    errf = os.path.join(env.tmp, "create.err")
    with open(errf, "w") as err:  # the init keeps create's stdio: no pipes
        r = subprocess.run(env.cmd + ["--root", env.root, "create", "-b", env.bundle, cid], env=envv,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=30)
    assert r.returncode == 0, open(errf).read()
    got = []

    def systemd():
        msg = srv.recv(4096)
        got.append(msg)
        data, anc, _f, _a = srv.recvmsg(4096, socket.CMSG_SPACE(4))
        got.append(data)
        fds = array.array("i")
        for level, typ, d in anc:
            fds.frombytes(d)
        for fd in fds:
            os.close(fd)  # acknowledges the barrier

    t = threading.Thread(target=systemd, daemon=True)
    t.start()
    r = subprocess.run(env.cmd + ["--root", env.root, "start", cid], env=envv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    t.join(10)
    srv.close()
    assert r.returncode == 0, r.stderr
    pid = env.state(cid)["pid"]
    assert got[0] == f"READY=1\nMAINPID={pid}".encode()
    assert got[1] == b"BARRIER=1"
    assert open(os.path.join(env.rootfs, "tmp", "env")).read().strip() == "/run/notify/notify.sock"
    assert open(os.path.join(env.rootfs, "tmp", "mnt")).read().split()[5].startswith("ro")
    assert env.cli("delete", "-f", cid).returncode == 0


def test_notify_socket_with_run(env, sender):
    host = os.path.join(env.tmp, "host-notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(host)
    srv.settimeout(20)
    env.cfg["process"]["args"] = ["sh", "-c", f"{sender}; sleep 1; echo done"]
    env.write()
    got = []

    def systemd():
        got.append(srv.recv(4096))
        data, anc, _f, _a = srv.recvmsg(4096, socket.CMSG_SPACE(4))
        got.append(data)
        for _level, _typ, d in anc:
            os.close(int.from_bytes(d[:4], "little"))

    t = threading.Thread(target=systemd, daemon=True)
    t.start()
    cid = env.new_id()
    r = subprocess.run(env.cmd + ["--root", env.root, "run", "-b", env.bundle, cid],
                       env=dict(os.environ, NOTIFY_SOCKET=host), capture_output=True, text=True, timeout=30)
    t.join(10)
    srv.close()
    assert r.returncode == 0 and r.stdout == "done\n", r.stderr
    assert got[0].startswith(b"READY=1\nMAINPID=") and got[1] == b"BARRIER=1"
