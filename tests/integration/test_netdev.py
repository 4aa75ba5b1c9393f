"""linux.netDevices (runtime-spec 1.3): host devices moved into the
container's network namespace, as the container sees them, and what the
host sees before and after."""

import json
import os
import secrets
import subprocess
import time

import pytest

from tests.conftest import schema_validator


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def host_has(name):
    return ip("link", "show", "dev", name, check=False).returncode == 0


@pytest.fixture
def veth():
    """A veth pair on the host: (host end, end to move); both removed after."""
    tag = secrets.token_hex(3)
    a, b = f"ocva{tag}", f"ocvb{tag}"
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    yield a, b
    for n in (a, b):
        ip("link", "del", n, check=False)


def wait_gone(name, timeout=10.0):
    """Network namespaces are torn down asynchronously by the kernel."""
    end = time.monotonic() + timeout
    while host_has(name) and time.monotonic() < end:
        time.sleep(0.05)
    return not host_has(name)


def test_device_leaves_the_host_at_create(env, veth):
    peer, dev = veth
    ip("addr", "add", "10.231.91.7/24", "dev", dev)
    env.cfg["ociVersion"] = "1.3.0"
    env.cfg["linux"]["netDevices"] = {dev: {"name": "eth7"}}
    schema_validator("config.json").validate(env.cfg)
    cid = env.create(["true"])
    # moved at create: gone from the host while the container exists
    assert not host_has(dev)
    r = env.cli("start", cid)
    assert r.returncode == 0, r.stderr
    env.cli("delete", "--force", cid)
    assert wait_gone(peer)  # a virtual device dies with the namespace


def test_what_the_container_sees(env, veth):
    peer, dev = veth
    ip("addr", "add", "10.231.93.7/24", "dev", dev)
    ip("addr", "add", "fd00:93::7/64", "dev", dev, "nodad")
    ip("addr", "add", "10.231.94.7/24", "dev", dev, "valid_lft", "300", "preferred_lft", "300")
    env.cfg["linux"]["netDevices"] = {dev: {"name": "eth7"}}
    r = env.sh("ip addr show eth7; echo flags $(cat /sys/class/net/eth7/flags); echo devs $(ls /sys/class/net)")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "inet 10.231.93.7/24" in out and "inet6 fd00:93::7/64" in out, out
    assert "10.231.94.7" not in out, out  # only permanent addresses are carried over
    flags = int(out.split("flags ", 1)[1].split()[0], 16)
    assert flags & 1, out  # IFF_UP
    assert out.split("devs ", 1)[1].split() == ["eth7", "lo"], out
    assert wait_gone(peer)


def test_name_template(env, veth):
    peer, dev = veth
    env.cfg["linux"]["netDevices"] = {dev: {"name": "net%d"}}
    r = env.sh("ls /sys/class/net")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lo", "net0"], r.stdout


def test_host_name_kept_without_a_name(env, veth):
    peer, dev = veth
    env.cfg["linux"]["netDevices"] = {dev: {}}
    r = env.sh("ls /sys/class/net")
    assert r.stdout.split() == sorted(["lo", dev]), r.stdout + r.stderr


def test_name_taken_in_the_container_is_an_error(env, veth):
    """Checked for every device before any moves (the kernel would move the
    device under its old name and only then refuse the new one)."""
    peer, dev = veth
    env.cfg["linux"]["netDevices"] = {peer: {"name": "eth7"}, dev: {"name": "lo"}}
    r = env.sh("true")
    assert r.returncode == 1
    assert f"linux.netDevices.{dev}: a network device named 'lo' already exists" in r.stderr, r.stderr
    assert host_has(dev) and host_has(peer)  # neither moved
    assert env.cli("list", "-q").stdout.split() == []


def test_missing_device_is_an_error_and_leaves_nothing(env):
    env.cfg["linux"]["netDevices"] = {"ocvnosuch0": {}}
    r = env.sh("true")
    assert r.returncode == 1
    assert "linux.netDevices.ocvnosuch0: no network device 'ocvnosuch0' on the host\"" in r.stderr, r.stderr
    assert env.cli("list", "-q").stdout.split() == []


def test_needs_a_network_namespace(env, veth):
    peer, dev = veth
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "network"]
    env.cfg["linux"]["netDevices"] = {dev: {}}
    r = env.sh("true")
    assert r.returncode == 1 and "linux.netDevices: needs a network namespace" in r.stderr, r.stderr
    assert host_has(dev)


def test_joined_network_namespace(env, veth):
    """Devices go into a namespace joined by path just the same (the
    namespace of a process of the test's, so no `ip netns` mount is left)."""
    peer, dev = veth
    holder = subprocess.Popen(["unshare", "-n", "sleep", "300"])
    try:
        for _ in range(100):
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "network"] + [
            {"type": "network", "path": f"/proc/{holder.pid}/ns/net"}]
        env.cfg["linux"]["netDevices"] = {dev: {"name": "ext0"}}
        r = env.sh("true")
        assert r.returncode == 0, r.stderr
        # the namespace outlives the container, and the device stays in it, up
        seen = subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "-j", "link", "show", "dev", "ext0"],
                              capture_output=True, text=True).stdout
        assert json.loads(seen)[0]["flags"].count("UP") == 1, seen
        assert not host_has(dev)
    finally:
        holder.kill()
        holder.wait()
    assert wait_gone(peer)


def test_exec_does_not_move_anything(env, veth):
    """netDevices belongs to create: an exec into the container sends no
    route socket and touches no device."""
    peer, dev = veth
    env.cfg["linux"]["netDevices"] = {dev: {"name": "eth7"}}
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    r = env.cli("exec", cid, "ls", "/sys/class/net")
    assert r.returncode == 0 and r.stdout.split() == ["eth7", "lo"], r.stdout + r.stderr
    assert env.cli("delete", "--force", cid).returncode == 0
    assert wait_gone(peer)


@pytest.mark.parametrize("devs,why", [
    ({"bad/name": {}}, "linux.netDevices.bad/name: not a valid network device name"),
    ({"x" * 16: {}}, "not a valid network device name"),
    ({"ocva0": {"name": "a b"}}, "linux.netDevices.ocva0.name: 'a b' is not a valid network device name"),
    ({"ocva0": {"name": "e%d%d"}}, "is not a valid network device name"),
    ({"ocva0": {"name": "same"}, "ocva1": {"name": "same"}}, "linux.netDevices.ocva1.name: 'same' is given to two"),
    ({"ocva0": "eth0"}, "linux.netDevices.ocva0: must be an object"),
    (["ocva0"], "linux.netDevices: must be an object"),
])
def test_bad_configs_name_the_field(env, devs, why):
    env.cfg["linux"]["netDevices"] = devs
    r = env.sh("true")
    assert r.returncode == 1 and why in r.stderr, r.stderr


def test_into_a_user_namespace_owned_network_namespace(env, veth):
    """With a user namespace the network namespace belongs to it; the route
    socket the init opened there still lets the runtime configure the device."""

    peer, dev = veth
    ip("addr", "add", "10.231.95.7/24", "dev", dev)
    env.use_userns()
    env.cfg["linux"]["netDevices"] = {dev: {"name": "eth7"}}
    r = env.sh("ip addr show eth7; echo flags $(cat /sys/class/net/eth7/flags); id -u")
    assert r.returncode == 0, r.stderr
    assert "inet 10.231.95.7/24" in r.stdout and r.stdout.split()[-1] == "0", r.stdout
    assert int(r.stdout.split("flags ", 1)[1].split()[0], 16) & 1, r.stdout
    assert wait_gone(peer)
