"""dockerd 20.10 (with its own managed containerd) driving ocirun through
containerd-shim-runc-v2: `--add-runtime ocirun=<wrapper>` and
`--default-runtime ocirun` (so `docker build` runs its RUN steps on ocirun
too), on a private data-root, exec-root, socket and bridge, iptables off.
Only 127.0.0.1 and the private bridge's addresses are ever contacted."""

import json
import os
import random
import re
import time

import pytest

from tests.engines.conftest import (Daemon, PtySession, Runtime, docker_env, free_port, http_get, kill_pids,
                                    missing_parent_cgroups, need_binaries, need_root, pids_matching, private_tmpdir,
                                    remove_cgroup_dirs, remove_tree, run, uid, wait_for)

DOCKER = "/usr/bin/docker"  # the client from docker.io, matching dockerd 20.10
IMAGE = "ocirun-busybox:latest"

SLEEPER = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")


class Dockerd(Daemon):
    name = "dockerd"
    tail_lines = 40

    def __init__(self, tmp, runtime):
        self.tmp = tmp
        self.runtime = runtime
        self.sock = os.path.join(tmp, "docker.sock")
        self.logfile = os.path.join(tmp, "dockerd.log")
        self.bridge = "ocibr" + os.urandom(3).hex()
        self.subnet_octet = random.randint(10, 250)
        self.gateway = f"10.231.{self.subnet_octet}.1"
        run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True)
        run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge], check=True)
        run(["ip", "link", "set", self.bridge, "up"], check=True)
        cfg = os.path.join(tmp, "daemon.json")
        with open(cfg, "w") as f:
            json.dump({}, f)
        self.env = docker_env(self.sock, tmp)
        # dockerd's cgroupfs driver makes /docker in every hierarchy; removed
        # at the end unless it was there before
        self.made_cgroups = missing_parent_cgroups("docker")
        cmd = ["dockerd", "--config-file", cfg, "--data-root", f"{tmp}/data", "--exec-root", f"{tmp}/exec",
               "-H", f"unix://{self.sock}", "--pidfile", f"{tmp}/docker.pid", "--bridge", self.bridge,
               "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--storage-driver", "overlay2",
               "--add-runtime", f"ocirun={runtime.path}", "--default-runtime", "ocirun",
               "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "debug"]
        self.start(cmd, lambda: self("info", timeout=10).returncode == 0, 60, interval=0.5,
                   what="dockerd to answer `docker info`")

    def __call__(self, *args, timeout=90, **kw):
        return run([DOCKER, *map(str, args)], timeout=timeout, env=self.env, **kw)

    def cleanup(self):
        ids = self("ps", "-aq", timeout=30).stdout.split()
        if ids:
            self("rm", "-f", *ids, timeout=60)

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.cleanup()
        except Exception:  # noqa: BLE001
            pass
        self.stop_daemon(timeout=30)
        # its containerd, the shims and docker-proxy all carry our paths
        kill_pids(pids_matching(self.tmp))
        time.sleep(0.3)
        from tests.engines.conftest import unmount_all_under
        unmount_all_under(self.tmp)
        run(["ip", "link", "del", self.bridge])
        remove_cgroup_dirs(self.made_cgroups)
        self.close_log()


@pytest.fixture(scope="module")
def dockerd(busybox_archive):
    need_root()
    need_binaries("dockerd", "containerd", "containerd-shim-runc-v2")
    if not os.path.exists(DOCKER):
        pytest.skip("docker.io's client /usr/bin/docker is not installed")
    tmp = private_tmpdir("docker")
    d = None
    try:
        d = Dockerd(tmp, Runtime(tmp))
        r = d("load", "-i", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + d.log_tail()
        assert IMAGE in d("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        yield d
    finally:
        if d:
            d.stop()
        remove_tree(tmp)


@pytest.fixture
def dk(dockerd):
    dockerd.mark = dockerd.runtime.mark()
    yield dockerd
    dockerd.cleanup()


def drun(dk, *args, opts=(), timeout=90):
    return dk("run", "--runtime", "ocirun", *opts, IMAGE, *args, timeout=timeout)


def start_detached(dk, name, *args, opts=()):
    r = drun(dk, *(args or SLEEPER), opts=("-d", "--name", name, *opts))
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    return r.stdout.strip()


def state(dk, name):
    r = dk("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["State"]


def test_info_lists_runtime(dk):
    r = dk("info", "--format", "{{json .Runtimes}} {{.DefaultRuntime}}")
    assert r.returncode == 0, r.stderr
    assert "ocirun" in r.stdout and r.stdout.strip().endswith("ocirun"), r.stdout


def test_run_foreground(dk):
    r = drun(dk, "sh", "-c", "echo out-docker; echo err-docker >&2; cat /proc/1/cmdline; echo", opts=("--rm",))
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    assert "out-docker" in r.stdout and "err-docker" in r.stderr and "sh\0-c\0" in r.stdout
    calls = dk.runtime.calls_since(dk.mark)
    assert re.search(r"argv: --root \S+/runtime-runc/moby --log \S+ --log-format json create --bundle", calls), \
        calls


def test_memory_and_pids_limits_seen_inside(dk):
    """docker on cgroup v1 gives no cgroup namespace: /sys/fs/cgroup/<ctrl>
    must be the container's own group (its limits, no host groups)."""
    r = drun(dk, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
             "find /sys/fs/cgroup/pids/ -mindepth 1 -type d | wc -l",
             opts=("--rm", "--memory", "64m", "--pids-limit", "42"))
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    assert r.stdout.split() == [str(64 << 20), "42", "0"], r.stdout


def test_run_exit_status_and_missing_executable(dk):
    r = drun(dk, "sh", "-c", "exit 3", opts=("--rm",))
    assert r.returncode == 3, r.stderr + dk.diag(dk.mark)
    r = drun(dk, "/no/such/binary", opts=("--rm",))
    assert r.returncode == 127, f"rc={r.returncode} {r.stderr}" + dk.diag(dk.mark)


def test_detached_stop_logs(dk):
    name = uid("dd")
    start_detached(dk, name, "sh", "-c", "echo started-ok; trap 'echo got-term; exit 0' TERM; sleep 1000 & wait")
    st = state(dk, name)
    assert st["Running"] and st["Pid"] > 0
    wait_for(lambda: "started-ok" in dk("logs", name).stdout, 10, what="log line")
    t0 = time.monotonic()
    r = dk("stop", "-t", "10", name)
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    assert time.monotonic() - t0 < 8, "SIGTERM did not reach the container"
    st = state(dk, name)
    assert not st["Running"] and st["ExitCode"] == 0, st
    assert "got-term" in dk("logs", name).stdout


def test_name_and_rm(dk):
    name = uid("dn")
    r = drun(dk, "echo", "named", opts=("--rm", "--name", name))
    assert r.returncode == 0 and "named" in r.stdout, r.stderr + dk.diag(dk.mark)
    assert name not in dk("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_env(dk):
    r = drun(dk, "sh", "-c", 'echo "FOO=$FOO BAR=$BAR"', opts=("--rm", "-e", "FOO=foo value", "-e", "BAR=2"))
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    assert "FOO=foo value BAR=2" in r.stdout


def test_volume_host_dir(dk):
    host = os.path.join(dk.tmp, uid("vol"))
    os.makedirs(host)
    with open(os.path.join(host, "from-host"), "w") as f:
        f.write("host-data\n")
    r = drun(dk, "sh", "-c", "cat /data/from-host; echo ctr-data > /data/from-ctr", opts=("--rm", "-v", f"{host}:/data"))
    assert r.returncode == 0 and "host-data" in r.stdout, r.stderr + dk.diag(dk.mark)
    with open(os.path.join(host, "from-ctr")) as f:
        assert f.read() == "ctr-data\n"
    r = drun(dk, "sh", "-c", "echo x > /data/y", opts=("--rm", "-v", f"{host}:/data:ro"))
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stdout + r.stderr


HTTPD = "mkdir -p /www && echo hello-from-{tag} > /www/index.html && exec httpd -f -p 80 -h /www"


def test_publish_port(dk):
    port = free_port()
    start_detached(dk, uid("dp"), "sh", "-c", HTTPD.format(tag="httpd"), opts=("-p", f"127.0.0.1:{port}:80"))
    body = http_get(port, "/index.html", timeout=30)
    assert body.strip() == b"hello-from-httpd"


def test_link(dk):
    srv = uid("srv")
    start_detached(dk, srv, "sh", "-c", HTTPD.format(tag="linked"))
    # Debian's busybox-static wget segfaults (on the host too), so speak HTTP
    # with nc to the address docker wrote into /etc/hosts for the link alias
    r = drun(dk, "sh", "-c", "ip=$(awk '$2 == \"web\" {print $1}' /etc/hosts); echo \"web=$ip\"; "
                             "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip 80",
             opts=("--rm", "--link", f"{srv}:web"))
    assert r.returncode == 0, r.stdout + r.stderr + dk.diag(dk.mark)
    assert "hello-from-linked" in r.stdout and "web=10.231." in r.stdout


def test_interactive_tty(dk):
    s = PtySession([DOCKER, "run", "--runtime", "ocirun", "-it", "--rm", IMAGE, "sh"], env=dk.env)
    try:
        s.expect("#", timeout=60)
        s.write("tty; echo answer-$((6*7))\r")
        s.expect("answer-42")
        assert b"/dev/pts/0" in s.buf, s.buf
        s.write("exit 5\r")
        assert s.wait(30) == 5
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + dk.diag(dk.mark)) from e
    finally:
        s.close()


def test_restart(dk):
    name = uid("dr")
    start_detached(dk, name)
    st1 = state(dk, name)
    r = dk("restart", "-t", "5", name)
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    st2 = state(dk, name)
    assert st2["Running"] and st2["Pid"] != st1["Pid"] and st2["StartedAt"] != st1["StartedAt"], (st1, st2)


def test_kill_and_rm_force(dk):
    name = uid("dk")
    start_detached(dk, name, "sleep", "1000")
    r = dk("kill", name)
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    wait_for(lambda: not state(dk, name)["Running"], 15, what="container to die")
    assert state(dk, name)["ExitCode"] == 137
    start_detached(dk, name + "-2")
    r = dk("rm", "-f", name + "-2")
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)


def test_exec(dk):
    name = uid("de")
    start_detached(dk, name)
    r = dk("exec", name, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
    assert r.returncode == 0 and "exec-ok" in r.stdout, r.stderr + dk.diag(dk.mark)
    r = dk("exec", name, "sh", "-c", "exit 6")
    assert r.returncode == 6


def test_exec_tty(dk):
    name = uid("det")
    start_detached(dk, name)
    s = PtySession([DOCKER, "exec", "-it", name, "sh"], env=dk.env)
    try:
        s.expect("#", timeout=60)
        s.write("tty; echo exec-$((6*7))\r")
        s.expect("exec-42")
        s.write("exit\r")
        assert s.wait(30) == 0
    except Exception as e:
        raise AssertionError(f"{e}\npty: {s.buf[-2000:]!r}" + dk.diag(dk.mark)) from e
    finally:
        s.close()


def test_build_with_default_runtime(dk):
    ctx = os.path.join(dk.tmp, uid("build"))
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM {IMAGE}\n"
                "ENV GREETING=built-by-ocirun\n"
                "RUN mkdir -p /app && echo \"$GREETING\" > /app/greeting && test -s /app/greeting\n"
                'CMD ["sh", "-c", "cat /app/greeting; echo greeting=$GREETING"]\n')
    tag = uid("ocirun-built") + ":1"
    r = dk("build", "-t", tag, ctx, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr + dk.diag(dk.mark)
    calls = dk.runtime.calls_since(dk.mark)
    assert " create --bundle " in calls, "the RUN step did not go through ocirun: " + calls
    r = dk("run", "--rm", tag)  # default runtime
    assert r.returncode == 0, r.stderr + dk.diag(dk.mark)
    assert "built-by-ocirun" in r.stdout and "greeting=built-by-ocirun" in r.stdout
    dk("rmi", "-f", tag)
