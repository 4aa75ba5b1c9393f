"""Engines on the systemd cgroup driver, inside a private systemd
(tests/systemd_ns.py: PID 1 of its own namespaces, its own system bus,
cgroup2 rooted at a sub-group of the host's): podman 4.3 with
`--cgroup-manager systemd`, dockerd 20.10 with
`native.cgroupdriver=systemd` and containerd 1.6 (`ctr run
--runc-systemd-cgroup`, what its CRI's SystemdCgroup=true does), each calling the runtime with
`--systemd-cgroup` and a `slice:prefix:name` cgroupsPath.  Every test runs
with runc (the baseline) and with ocirun, the same steps and the same
assertions: what the container saw in /proc/self/cgroup (its scope), exec
in the same scope, the unit systemd made, and no unit after rm.

Each engine runs in two private systemds: `unified` (cgroup2 only; on this
host the controllers are bound to v1, so that cgroup2 has none: no limits
there, podman's default pids limit is turned off with `--pids-limit 0`) and
`hybrid` (systemd's hybrid layout over sub-trees of the host's v1
hierarchies), where limits given to the engine are enforced: the container
sees them in its cgroup files and cannot fork past its pids limit."""

import json
import os
import re
import shutil
import signal
import tempfile

import pytest

from tests.conftest import private_systemd_factory
from tests.engines import ociimage
from tests.engines.conftest import (Daemon, Runtime, containerd_config, docker_env, need_binaries, need_root,
                                    private_tmpdir, remove_tree, run, uid, wait_for)

RUNTIMES = ("runc", "ocirun")
DOCKER = "/usr/bin/docker"  # docker.io's client, matching dockerd 20.10
SLEEPER = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def need_private_systemd(mode):
    from tests import systemd_ns

    why = systemd_ns.unavailable(mode)
    if why:
        pytest.skip(why)


def boot_in(tmp, **kw):
    """(booted private systemd, its teardown generator): state under tmp."""
    gen = private_systemd_factory(lambda name: tempfile.mkdtemp(prefix=name + "-", dir=tmp))
    boot = next(gen)
    return boot(**kw), gen


def finish(gen):
    """Run the private_systemd teardown (fails if it left anything)."""
    for _ in gen:
        pass


def units(sd, pattern):
    r = sd.run("systemctl", "list-units", "--all", "--plain", "--no-legend", pattern)
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def show(sd, unit, *props):
    r = sd.run("systemctl", "show", "-p", ",".join(props), unit)
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def cgroup2_line(text):
    return [line[3:] for line in text.splitlines() if line.startswith("0::")]


# ------------------------------------------------------------ podman

class SdPodman:
    """podman inside the private systemd, private stores in a bound dir."""

    def __init__(self, sd, tmp):
        self.sd, self.tmp = sd, tmp
        self.ocirun = Runtime(tmp, root=os.path.join(tmp, "ocirun-state"))
        conf = os.path.join(tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write('[engine]\nevents_logger = "file"\n'
                    f'events_logfile_path = "{tmp}/events.log"\ncgroup_manager = "systemd"\n'
                    '[containers]\nnetns = "none"\n')
        os.makedirs(os.path.join(tmp, "tmp"), exist_ok=True)
        self.env = dict(os.environ, CONTAINERS_CONF=conf, TMPDIR=os.path.join(tmp, "tmp"))
        self.image = None

    def __call__(self, runtime, *args, timeout=90, **kw):
        rt = self.ocirun.path if runtime == "ocirun" else shutil.which("runc")
        base = ["podman", "--runtime", rt, "--root", f"{self.tmp}/root", "--runroot", f"{self.tmp}/runroot",
                "--tmpdir", f"{self.tmp}/libpod", "--cgroup-manager", "systemd", "--storage-driver", "vfs",
                "--events-backend", "file", "--network-config-dir", f"{self.tmp}/networks"]
        return run(self.sd.cmd(*base, *map(str, args)), timeout=timeout, env=self.env, **kw)

    def diag(self):
        return f"\n--- ocirun calls ---\n{self.ocirun.calls()}"

    def cleanup(self):
        for rt in RUNTIMES:
            self(rt, "rm", "--force", "--all", "--time", "0", timeout=60)


@pytest.fixture(scope="module", params=["unified", "hybrid"])
def sd_podman(request, busybox_archive, eng_tmp):
    need_root()
    need_binaries("podman", "conmon", "runc")
    need_private_systemd(request.param)
    tmp = private_tmpdir("sdpodman")
    gen = None
    try:
        sd, gen = boot_in(tmp, binds=[tmp, eng_tmp], mode=request.param)
        pm = SdPodman(sd, tmp)
        r = pm("runc", "load", "-i", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"Loaded image(?:\(s\))?: (\S+)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        pm.image = m.group(1)
        yield pm
        pm.cleanup()
    finally:
        if gen:
            finish(gen)
        remove_tree(tmp)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_systemd_run_exec_stop_rm(sd_podman, runtime):
    pm = sd_podman
    opts = (*LIMITS, "--network", "none", "--cgroupns", "host") + (("--pids-limit", "0") if pm.sd.mode == "unified"
                                                                   else ())
    # foreground run: the container's own cgroup is podman's scope in machine.slice
    name = uid(f"sdfg-{runtime}")
    r = pm(runtime, "run", *opts, "--name", name, pm.image, "sh", "-c", "echo hello-sd; cat /proc/self/cgroup")
    assert r.returncode == 0, r.stderr + pm.diag()
    cid = pm(runtime, "inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert "hello-sd" in r.stdout
    assert cgroup2_line(r.stdout) == [f"/machine.slice/libpod-{cid}.scope"], r.stdout
    assert pm(runtime, "rm", name).returncode == 0
    assert units(pm.sd, f"libpod-{cid}.scope") == []

    # detached, exec, stop, rm
    name = uid(f"sdbg-{runtime}")
    r = pm(runtime, "run", *opts, "-d", "--name", name, pm.image, *SLEEPER)
    assert r.returncode == 0, r.stderr + pm.diag()
    cid = r.stdout.strip().splitlines()[-1]
    unit = f"libpod-{cid}.scope"
    props = show(pm.sd, unit, "ActiveState", "Slice", "ControlGroup")
    assert props == {"ActiveState": "active", "Slice": "machine.slice", "ControlGroup": f"/machine.slice/{unit}"}, \
        props
    r = pm(runtime, "exec", name, "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr + pm.diag()
    assert cgroup2_line(r.stdout) == [f"/machine.slice/{unit}"], r.stdout
    # pause/unpause: the unit's group frozen and thawed (cgroup2's freeze, or the v1 freezer on hybrid)
    if pm.sd.mode == "unified":
        freezer, frozen, thawed = f"/sys/fs/cgroup/machine.slice/{unit}/cgroup.events", "frozen 1", "frozen 0"
    else:
        freezer, frozen, thawed = f"/sys/fs/cgroup/freezer/machine.slice/{unit}/freezer.state", "FROZEN", "THAWED"
    assert pm(runtime, "pause", name).returncode == 0, pm.diag()
    assert json.loads(pm(runtime, "inspect", name).stdout)[0]["State"]["Status"] == "paused"
    assert frozen in pm.sd.run("cat", freezer).stdout.splitlines()
    assert pm(runtime, "unpause", name).returncode == 0, pm.diag()
    assert json.loads(pm(runtime, "inspect", name).stdout)[0]["State"]["Status"] == "running"
    assert thawed in pm.sd.run("cat", freezer).stdout.splitlines()
    r = pm(runtime, "stop", "--time", "10", name)
    assert r.returncode == 0, r.stderr + pm.diag()
    state = json.loads(pm(runtime, "inspect", name).stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert pm(runtime, "rm", name).returncode == 0
    assert units(pm.sd, unit) == []
    if runtime == "ocirun":
        assert "--systemd-cgroup" in pm.ocirun.calls(), pm.diag()


# ------------------------------------------------------------ dockerd

class SdDockerd(Daemon):
    """dockerd inside the private systemd: /var/lib/docker is a tmpfs in
    there, its socket and the runtime wrapper in a bound dir."""

    name = "dockerd"
    tail_lines = 40

    def __init__(self, sd, tmp):
        self.sd, self.tmp = sd, tmp
        self.runtime = Runtime(tmp)
        self.sock = os.path.join(tmp, "docker.sock")
        self.logfile = os.path.join(tmp, "dockerd.log")
        self.pidfile = os.path.join(tmp, "docker.pid")
        cfg = os.path.join(tmp, "daemon.json")
        with open(cfg, "w") as f:
            json.dump({}, f)
        self.env = docker_env(self.sock, tmp)
        cmd = sd.cmd("dockerd", "--config-file", cfg, "--data-root", "/var/lib/docker", "-H", f"unix://{self.sock}",
                     "--pidfile", self.pidfile, "--bridge=none", "--iptables=false", "--ip-masq=false",
                     "--ip-forward=false", "--storage-driver", "overlay2", "--add-runtime",
                     f"ocirun={self.runtime.path}", "--exec-opt", "native.cgroupdriver=systemd",
                     "--log-level", "debug")
        self.start(cmd, lambda: self("info", timeout=10).returncode == 0, 60, interval=0.5,
                   what="dockerd to answer `docker info`")

    def __call__(self, *args, timeout=90, **kw):
        return run([DOCKER, *map(str, args)], timeout=timeout, env=self.env, **kw)

    def stop(self):
        """rm -f every container, then SIGTERM dockerd inside (the pid in its
        pidfile is the namespace's) and wait for it: its containerd and
        shims go with it."""
        try:
            ids = self("ps", "-aq", timeout=30).stdout.split()
            if ids:
                self("rm", "-f", *ids, timeout=60)
            with open(self.pidfile) as f:
                self.sd.run("kill", "-TERM", f.read().strip())
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - the private systemd's poweroff kills the rest
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.close_log()


@pytest.fixture(scope="module", params=["unified", "hybrid"])
def sd_dockerd(request, busybox_archive):
    need_root()
    need_binaries("dockerd", "containerd", "containerd-shim-runc-v2", "runc")
    if not os.path.exists(DOCKER):
        pytest.skip(f"docker.io's client {DOCKER} is not installed")
    need_private_systemd(request.param)
    tmp = private_tmpdir("sddocker")
    gen = d = None
    try:
        sd, gen = boot_in(tmp, binds=[tmp], tmpfs=["/var/lib/docker"], mode=request.param)
        d = SdDockerd(sd, tmp)
        r = d("load", "-i", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + d.log_tail()
        yield d
    finally:
        if d:
            d.stop()
        if gen:
            finish(gen)
        remove_tree(tmp)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_systemd_run_exec_stop_rm(sd_dockerd, runtime):
    """dockerd sends linux.resources.blockIO.weight 0 ("not set") on every
    container: on the unified layout, whose cgroup2 has no io controller,
    the runtime must not need one for it (runc does not)."""
    dk = sd_dockerd
    image = "ocirun-busybox:latest"
    opts = ("--runtime", runtime, "--cgroupns", "host", "--network", "none")
    mark = dk.runtime.mark()
    name = uid(f"sdfg-{runtime}")
    r = dk("run", *opts, "--name", name, image, "sh", "-c", "echo hello-sd; cat /proc/self/cgroup")
    assert r.returncode == 0, r.stderr + dk.diag(mark)
    cid = dk("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert "hello-sd" in r.stdout
    assert cgroup2_line(r.stdout) == [f"/system.slice/docker-{cid}.scope"], r.stdout
    assert dk("rm", name).returncode == 0
    assert units(dk.sd, f"docker-{cid}.scope") == []

    name = uid(f"sdbg-{runtime}")
    r = dk("run", *opts, "-d", "--name", name, image, *SLEEPER)
    assert r.returncode == 0, r.stderr + dk.diag(mark)
    cid = r.stdout.strip()
    unit = f"docker-{cid}.scope"
    wait_for(lambda: show(dk.sd, unit, "ActiveState")["ActiveState"] == "active", 20, what=f"{unit} active")
    props = show(dk.sd, unit, "Slice", "ControlGroup", "Delegate")
    assert props == {"Slice": "system.slice", "ControlGroup": f"/system.slice/{unit}", "Delegate": "yes"}, props
    r = dk("exec", name, "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr + dk.diag(mark)
    assert cgroup2_line(r.stdout) == [f"/system.slice/{unit}"], r.stdout
    r = dk("stop", "--time", "10", name)
    assert r.returncode == 0, r.stderr + dk.diag(mark)
    state = json.loads(dk("inspect", name).stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert dk("rm", name).returncode == 0
    assert units(dk.sd, unit) == []
    if runtime == "ocirun":
        assert "--systemd-cgroup" in dk.runtime.calls_since(mark), dk.diag(mark)


LIMITED = ("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; "
           "(i=0; while [ $i -lt 12 ]; do sleep 100 & i=$((i+1)); done); echo forks-done")


def assert_limited(r):
    out = r.stdout + r.stderr
    assert r.stdout.split()[:2] == ["8", str(32 << 20)], out
    assert "can't fork" in out, out


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_systemd_limits_enforced(sd_podman, runtime):
    pm = sd_podman
    if pm.sd.mode != "hybrid":
        pytest.skip("no controllers in this host's cgroup2: limits are not enforced there")
    name = uid(f"sdlim-{runtime}")
    r = pm(runtime, "run", *LIMITS, "--network", "none", "--cgroupns", "host", "--pids-limit", "8", "--memory", "32m",
           "--name", name, pm.image, "sh", "-c", LIMITED)
    cid = pm(runtime, "inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert pm(runtime, "rm", "--force", name).returncode == 0
    assert_limited(r)
    assert units(pm.sd, f"libpod-{cid}.scope") == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_systemd_limits_enforced(sd_dockerd, runtime):
    dk = sd_dockerd
    if dk.sd.mode != "hybrid":
        pytest.skip("no controllers in this host's cgroup2: limits are not enforced there")
    name = uid(f"sdlim-{runtime}")
    r = dk("run", "--runtime", runtime, "--cgroupns", "host", "--network", "none", "--pids-limit", "8",
           "--memory", "32m", "--name", name, "ocirun-busybox:latest", "sh", "-c", LIMITED)
    cid = dk("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert dk("rm", "--force", name).returncode == 0
    assert_limited(r)
    assert units(dk.sd, f"docker-{cid}.scope") == []


# ------------------------------------------------------------ containerd

class SdContainerd(Daemon):
    """containerd inside the private systemd (root on a tmpfs in there,
    state in its /run); ctr runs in there too (its fifos are in its /run)."""

    name = "containerd"

    def __init__(self, sd, tmp):
        self.sd, self.tmp = sd, tmp
        self.runtime = Runtime(tmp)
        self.address = "/run/ocirun-ctd/ctd.sock"
        self.logfile = os.path.join(tmp, "containerd.log")
        self.config = os.path.join(tmp, "config.toml")
        with open(self.config, "w") as f:
            f.write(containerd_config(self.address, "/var/lib/containerd", "/run/ocirun-ctd/state",
                                      "/run/ocirun-ctd/debug.sock"))
        self.start(sd.cmd("containerd", "--config", self.config),
                   lambda: self.ctr("version", timeout=5).returncode == 0, 30, what="containerd to answer")

    def ctr(self, *args, timeout=60, **kw):
        return run(self.sd.cmd("ctr", "--address", self.address, "--namespace", "ocirun", *map(str, args)),
                   timeout=timeout, **kw)

    def task_status(self, cid):
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == cid:
                return parts[1], parts[2]
        return None, None

    def stop(self):
        try:
            for cid in self.ctr("task", "ls", "-q", timeout=20).stdout.split():
                self.ctr("task", "rm", "-f", cid, timeout=20)
            for cid in self.ctr("containers", "ls", "-q", timeout=20).stdout.split():
                self.ctr("containers", "rm", cid, timeout=20)
        except Exception:  # noqa: BLE001 - the private systemd's poweroff kills the rest
            pass
        self.stop_daemon()
        self.close_log()


@pytest.fixture(scope="module", params=["unified", "hybrid"])
def sd_containerd(request, busybox_archive, eng_tmp):
    need_root()
    need_binaries("containerd", "ctr", "containerd-shim-runc-v2", "runc")
    need_private_systemd(request.param)
    tmp = private_tmpdir("sdctd")
    gen = c = None
    try:
        sd, gen = boot_in(tmp, binds=[tmp, eng_tmp], tmpfs=["/var/lib/containerd"], mode=request.param)
        c = SdContainerd(sd, tmp)
        r = c.ctr("images", "import", busybox_archive["path"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + c.log_tail()
        yield c
    finally:
        if c:
            c.stop()
        if gen:
            finish(gen)
        remove_tree(tmp)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_containerd_systemd_run_exec_kill_rm(sd_containerd, runtime):
    c = sd_containerd
    rt = c.runtime.path if runtime == "ocirun" else shutil.which("runc")
    cid = uid(f"sd-{runtime}")
    unit = f"ctr-{cid}.scope"
    # ctr sets cpu shares 1024 by default; 0 leaves them out (no cpu controller in the unified layout here)
    r = c.ctr("run", "-d", "--runc-binary", rt, "--runc-systemd-cgroup", "--cgroup", f"machine.slice:ctr:{cid}",
              "--cpu-shares", "0", ociimage.FULL_REF, cid, *SLEEPER)
    assert r.returncode == 0, r.stdout + r.stderr + c.diag()
    try:
        wait_for(lambda: c.task_status(cid)[1] == "RUNNING", 20, what=f"task {cid} RUNNING")
        pid = c.task_status(cid)[0]
        props = show(c.sd, unit, "ActiveState", "Delegate", "Slice", "ControlGroup")
        assert props == {"ActiveState": "active", "Delegate": "yes", "Slice": "machine.slice",
                         "ControlGroup": f"/machine.slice/{unit}"}, props
        procs = c.sd.run("cat", f"/sys/fs/cgroup/{'' if c.sd.mode == 'unified' else 'unified/'}machine.slice/{unit}"
                                "/cgroup.procs").stdout.split()
        assert pid in procs, (pid, procs)
        r = c.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "cat /proc/self/cgroup; sleep 0.5")
        assert r.returncode == 0, r.stdout + r.stderr + c.diag()
        assert cgroup2_line(r.stdout) == [f"/machine.slice/{unit}"], r.stdout  # ctr gives no cgroup namespace
        assert c.ctr("task", "kill", "-s", "SIGTERM", cid).returncode == 0
        wait_for(lambda: c.task_status(cid)[1] == "STOPPED", 20, what=f"task {cid} STOPPED")
    finally:
        c.ctr("task", "rm", "-f", cid)
        c.ctr("containers", "rm", cid)
    assert units(c.sd, unit) == []
    if runtime == "ocirun":
        assert "--systemd-cgroup" in c.runtime.calls(), c.diag()
