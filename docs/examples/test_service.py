"""A pytest fixture that runs a web server in a container for the tests that
need it and tears it down after them, whatever they did.

The server is busybox httpd in a container with no network but its own
loopback: the tests reach it through Container.connect, which opens the
connection inside the container's network namespace, so nothing listens on
the host and parallel runs never fight over a port.  Its content is a host
directory bind-mounted read-only.

    OCIRUN_EXAMPLE_ROOTFS=/path/to/busybox/rootfs python3 -m pytest test_service.py   (as root)
"""

import os
import time

import pytest

import ocirun

PORT = 8080


@pytest.fixture
def web(tmp_path):
    rootfs = os.environ.get("OCIRUN_EXAMPLE_ROOTFS")
    if not rootfs:
        pytest.skip("set OCIRUN_EXAMPLE_ROOTFS to a rootfs with busybox")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")

    spec = ocirun.Spec(rootfs, ["httpd", "-f", "-p", f"127.0.0.1:{PORT}", "-h", "/www"])
    spec.bind(www, "/www", readonly=True)
    spec.memory, spec.pids = "64M", 32
    spec.network = "none"
    # entering the block creates and starts it; leaving it kills and deletes
    # it, also when a test failed or was interrupted
    with ocirun.Container(spec, root=os.environ.get("OCIRUN_EXAMPLE_ROOT")) as c:
        wait_until_listening(c, PORT)
        yield c


def wait_until_listening(c, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            c.connect(port).close()
            return
        except ConnectionRefusedError:
            if c.status != "running" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_get(c, path):
    """(status line, body) of GET path from the container's server."""
    with c.connect(PORT, timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: test\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def test_serves_the_bound_directory(web):
    assert http_get(web, "/") == ("HTTP/1.1 200 OK", "hello from the container\n")


def test_missing_page(web):
    status, _ = http_get(web, "/nope.html")
    assert status == "HTTP/1.1 404 Not Found"


def test_the_server_runs_confined(web):
    r = web.exec(["sh", "-c", "ls /sys/class/net; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || "
                              "cat /sys/fs/cgroup/pids.max; touch /www/x"], text=True)
    assert r.stdout.split() == ["lo", "32"]
    assert "Read-only file system" in r.stderr
