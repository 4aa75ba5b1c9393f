"""A private systemd for the tests of the systemd cgroup driver.

What it builds: Debian's systemd (252 or later) running as PID 1 of its own
pid, mount, cgroup, uts, ipc and net namespaces, with its own system bus,
on a host whose PID 1 is not systemd (or is: the host's systemd is never
talked to).  Engines call the runtime with `--systemd-cgroup` and a
`slice:prefix:name` cgroupsPath on any systemd distribution; the driver
must be tested against a real systemd, not a mock, and the test machine's
own PID 1 is not one.

How (each step is undone by the kernel when the namespaces die, except the
cgroups, which the supervisor removes):

- A *supervisor* process (this file run as `_supervise`, in a private mount
  namespace of its own) mounts the host's cgroup hierarchies privately and
  makes `ocirun-sdns-<id>/{sup,payload}` under its current cgroup in each:
  the cgroup2 one always, and in `hybrid` mode every cgroup v1 hierarchy
  too (the controllers' own trees, so limits systemd sets are enforced on a
  host whose controllers are bound to v1).  It stays in `sup/`.
- It starts `unshare --pid --fork --kill-child --uts --ipc --net --mount`
  whose child, PID 1 of the new pid namespace (`_pid1`), moves itself into
  `payload/`, unshares a cgroup namespace rooted there, and builds a root:
  an overlay of the host's `/` with a tmpfs upper layer (host files are
  copy-on-write, the same interpreter and binary paths work inside), the
  same for the host's /tmp (a runtime installed under it works inside; the
  boot's cleanup of /tmp is masked), fresh tmpfs on /run and /dev (usual
  nodes, a private devpts), proc with a read-only /proc/sysrq-trigger
  (/proc/sys stays writable, as on the hosts it stands for: runtimes write
  a container's namespaced sysctls through it; systemd-sysctl is masked,
  so nothing inside writes the host-global ones; `readonly_proc_sys=True`
  binds it read-only, as systemd-nspawn and unprivileged containers do),
  read-only sysfs, and /sys/fs/cgroup: a cgroup2 mount
  (`unified`) or a tmpfs holding the v1 hierarchies plus cgroup2 at
  `unified/` (`hybrid`), all rooted at `payload/` by the cgroup namespace.
  A tmpfs over /etc/systemd/system holds only a minimal boot target
  (sysinit + dbus) and masks for units that touch host-global state, so
  none of the host's enabled services start.  Optional read-write binds
  (a bundle directory or state root whose changes the host must see) and
  extra tmpfs mounts.  It
  pivots into that root, drops host-global capabilities (modules, clock,
  raw I/O, syslog, MAC, audit control, alarms) from its bounding set and
  execs systemd.
- Commands enter with `nsenter` into all of its namespaces; they first move
  into the leaf cgroup `/ocirun-sdns-exec` of its tree (in every mounted
  hierarchy) and only then join its cgroup namespace, so that systemd can
  migrate them into scopes (a process outside the namespace's root cannot
  be moved by it).

Nothing is left on the host: `down()` asks systemd to power off (SIGRTMIN+4,
0.1-0.2 s), kills PID 1 if it does not, then the supervisor kills anything
left in its cgroup tree and removes it.  The supervisor also does this when
the test process dies, even by SIGKILL (its parent-death signal is SIGTERM),
and a booted instance is always torn down by the fixture's finalizer, also
when the test fails or is interrupted.  Booting takes about 0.25 s.

Only the standard library: the stages run as `python3 -I -S` from this file.
"""

import contextlib
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

SYSTEMD = "/lib/systemd/systemd"
PREFIX = "ocirun-sdns-"
EXEC_LEAF = "ocirun-sdns-exec"
TARGET = "ocirun-sdns.target"

# units that would touch host-global state, or need what the namespace has not
MASKED = ("systemd-modules-load.service", "systemd-sysctl.service", "systemd-binfmt.service",
          "proc-sys-fs-binfmt_misc.automount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
          "sys-kernel-config.mount", "sys-fs-fuse-connections.mount", "dev-hugepages.mount",
          "systemd-journald-audit.socket", "systemd-pstore.service", "systemd-firstboot.service",
          "systemd-random-seed.service", "systemd-update-utmp.service", "systemd-hwdb-update.service",
          "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
          "systemd-udev-trigger.service", "systemd-remount-fs.service", "systemd-machine-id-commit.service")

# capabilities over host-global state: out of the private systemd's bounding set
DROP_CAPS = {"sys_module": 16, "sys_rawio": 17, "sys_time": 25, "audit_control": 30, "mac_override": 32,
             "mac_admin": 33, "syslog": 34, "wake_alarm": 35, "block_suspend": 36}

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
CLONE_NEWCGROUP = 0x02000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP = 1, 24
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}


# ------------------------------------------------------------ requirements

def systemd_version():
    """The installed systemd's major version, or None."""
    if not os.access(SYSTEMD, os.X_OK):
        return None
    try:
        out = subprocess.run([SYSTEMD, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"systemd (\d+)", out)
    return int(m.group(1)) if m else None


def v1_hierarchies():
    """(mount options, directory name, cgroup path) of every cgroup v1
    hierarchy this process is in, from /proc/self/cgroup."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if not ctrls:
                continue
            if ctrls.startswith("name="):
                out.append(("none," + ctrls, ctrls[5:], path))
            else:
                out.append((ctrls, ctrls, path))
    return out


def unavailable(mode="unified"):
    """Why a private systemd cannot boot here (a skip reason), or None.
    Checks only: nothing is created."""
    if os.geteuid() != 0:
        return "a private systemd needs root"
    v = systemd_version()
    if v is None:
        return f"systemd is not installed ({SYSTEMD})"
    if v < 252:
        return f"systemd {v} is older than 252"
    if not (shutil.which("dbus-daemon") or shutil.which("dbus-broker")):
        return "no D-Bus daemon (apt-get install dbus)"
    for tool in ("unshare", "nsenter", "systemctl", "systemd-run"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if os.uname().machine not in SYS_PIVOT_ROOT:
        return f"pivot_root's syscall number is not known on {os.uname().machine}"
    if not os.path.exists("/proc/self/ns/cgroup"):
        return "no cgroup namespaces"
    with open("/proc/filesystems") as f:
        fss = f.read().split()
    if "cgroup2" not in fss or "overlay" not in fss:
        return "the kernel lacks cgroup2 or overlayfs"
    with open("/proc/self/cgroup") as f:
        if not any(line.startswith("0::") for line in f):
            return "this process is in no cgroup2 group"
    if mode == "hybrid":
        names = {d for _o, d, _p in v1_hierarchies()}
        if "systemd" not in names:
            return "no name=systemd v1 hierarchy on this host (legacy/hybrid systemd needs it)"
        if not {"memory", "pids"} <= {c for d in names for c in d.split(",")}:
            return "no memory and pids v1 hierarchies on this host"
    return None


# ------------------------------------------------------------ the host side

class PrivateSystemd:
    """One private systemd.  `up()` boots it, `cmd(*argv)` is the argv that
    runs a command inside it, `run(*argv)` runs one, `down()` tears it down
    (idempotent; also what the fixtures call on failure).

    workdir: an empty directory of ours on the host (state, console log);
    binds: host directories bound read-write at the same path inside;
    tmpfs: paths given a fresh tmpfs inside (e.g. /var/lib/docker);
    mode: "unified" (cgroup2 only: controllers bound to v1 on a hybrid host
    are not there, limits are recorded, not enforced) or "hybrid"
    (systemd's legacy/hybrid layout over sub-trees of the host's v1
    hierarchies: limits are enforced by the v1 controllers);
    readonly_proc_sys: /proc/sys bound read-only inside (as in
    systemd-nspawn), not writable as on a host."""

    def __init__(self, workdir, binds=(), tmpfs=(), mode="unified", readonly_proc_sys=False):
        assert mode in ("unified", "hybrid"), mode
        self.dir = os.path.abspath(workdir)
        self.mode = mode
        self.id = PREFIX + secrets.token_hex(4)
        self.binds = [os.path.abspath(b) for b in binds]
        self.tmpfs = list(tmpfs)
        self.readonly_proc_sys = readonly_proc_sys
        self.proc = None
        self.pid1 = None
        self.boot_seconds = None
        self.down_report = None

    # -- lifecycle
    def up(self, timeout=60):
        t0 = time.monotonic()
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump({"id": self.id, "mode": self.mode, "binds": self.binds, "tmpfs": self.tmpfs,
                       "readonly_proc_sys": self.readonly_proc_sys, "parent": os.getpid()}, f)
        self.console = os.path.join(self.dir, "console.log")
        with open(self.console, "wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-I", "-S",
                 os.path.abspath(__file__), "_supervise", self.dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            pivoted = os.path.join(self.dir, "pivoted")
            while not os.path.exists(pivoted):
                if self.proc.poll() is not None:
                    raise RuntimeError("private systemd did not start:\n" + self.log_tail())
                if time.monotonic() > deadline:
                    raise RuntimeError("private systemd: no root after %ss:\n%s" % (timeout, self.log_tail()))
                time.sleep(0.01)
            with open(os.path.join(self.dir, "pid1")) as f:
                self.pid1 = int(f.read())
            with open(os.path.join(self.dir, "pidns")) as f:
                self.pidns = f.read()
            while self.run("test", "-S", "/run/systemd/private", timeout=30).returncode != 0:
                if time.monotonic() > deadline or not self._pid1_alive():
                    raise RuntimeError("private systemd: no manager socket:\n" + self.log_tail())
                time.sleep(0.02)
            left = max(1, int(deadline - time.monotonic()))
            st = self.run("systemctl", "is-system-running", "--wait", timeout=left + 5).stdout.strip()
            if st not in ("running", "degraded"):
                failed = self.run("systemctl", "--failed", "--no-legend").stdout
                raise RuntimeError(f"private systemd is {st!r}; failed units: {failed}\n" + self.log_tail())
        except BaseException:
            self.down()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _pid1_alive(self):
        try:
            return os.readlink(f"/proc/{self.pid1}/ns/pid") == self.pidns
        except OSError:
            return False

    def down(self, timeout=30):
        """Power it off and remove its cgroups; returns the supervisor's
        report ({"left": [...]}: what could not be removed)."""
        if self.proc is None:
            return self.down_report
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # the supervisor is stuck: kill the namespace ourselves
                if self.pid1 and self._pid1_alive():
                    os.kill(self.pid1, signal.SIGKILL)
                proc.kill()
                proc.wait(timeout=10)
        try:
            with open(os.path.join(self.dir, "down.json")) as f:
                self.down_report = json.load(f)
        except (OSError, ValueError):
            self.down_report = {"left": ["supervisor wrote no report"], "log": self.log_tail()}
        return self.down_report

    def log_tail(self, n=40):
        try:
            with open(self.console, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- commands inside
    def cmd(self, *argv):
        """argv that runs `argv` inside: all its namespaces, its root, in the
        leaf cgroup /ocirun-sdns-exec of its tree.  Killing the returned
        process (nsenter, which forks into the pid namespace and does not
        forward signals) kills the command too: its parent-death signal."""
        hier = "/sys/fs/cgroup" if self.mode == "unified" else " ".join(
            ["/sys/fs/cgroup/unified"] + [f"/sys/fs/cgroup/{d}" for _o, d, _p in v1_hierarchies()])
        script = ('for h in %s; do mkdir -p "$h/%s" && echo $$ > "$h/%s/cgroup.procs" || exit 125; done\n'
                  'exec setpriv --pdeathsig KILL nsenter --cgroup=/proc/1/ns/cgroup -- "$@"'
                  % (hier, EXEC_LEAF, EXEC_LEAF))
        return ["nsenter", "-t", str(self.pid1), "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
                "--", "/bin/sh", "-c", script, "sh"] + [str(a) for a in argv]

    def run(self, *argv, timeout=60, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.cmd(*argv), timeout=timeout, **kw)

    def host_v2_dir(self):
        """Its cgroup2 group as the host sees it (where the host mounts
        cgroup2: /sys/fs/cgroup/unified on a hybrid host)."""
        return self.host_cgroup_dirs()[-1]

    def host_cgroup_dirs(self):
        """This instance's cgroup directories as the host sees them (for the
        tests' checks that nothing is left): <hierarchy>/<its path>/<id>,
        the cgroup2 one last; from what the supervisor recorded at boot."""
        try:
            with open(os.path.join(self.dir, "hierarchies.json")) as f:
                used = json.load(f)
        except (OSError, ValueError):
            return []
        out = []
        for _fstype, _opts, name, path in sorted(used, key=lambda h: h[0] == "cgroup2"):
            base = os.path.join("/sys/fs/cgroup", name)
            if not os.path.isdir(base):  # a cgroup2-only host mounts it right at /sys/fs/cgroup
                base = "/sys/fs/cgroup"
            out.append(os.path.join(base, path.lstrip("/"), self.id))
        return out


# ------------------------------------------------------------ libc

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, target, fstype=None, flags=0, data=None):
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc().mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {fstype or src} on {target}")


def umount(target, flags=0):
    _check(_libc().umount2(target.encode(), flags), f"umount {target}")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


# ------------------------------------------------------------ supervisor

def _hierarchies(mode):
    """(mount fstype, options, name, our cgroup path) per hierarchy used."""
    with open("/proc/self/cgroup") as f:
        v2 = [line.rstrip("\n").split(":", 2)[2] for line in f if line.startswith("0::")][0]
    out = [("cgroup2", None, "unified", v2)]
    if mode == "hybrid":
        out += [("cgroup", o, d, p) for o, d, p in v1_hierarchies()]
    return out


def _supervise(state):
    with open(os.path.join(state, "config.json")) as f:
        cfg = json.load(f)
    libc = _libc()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != cfg["parent"]:  # the test process died before prctl
        stopping.append(1)
    ident = cfg["id"]
    cgdir = os.path.join(state, "cg")
    hiers = []  # (mountpoint, our base dir, ID dir)
    child = None
    report = {"left": []}
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        used = _hierarchies(cfg["mode"])
        _write(os.path.join(state, "hierarchies.json"), json.dumps(used))
        for fstype, opts, name, path in used:
            mp = os.path.join(cgdir, name)
            os.makedirs(mp, exist_ok=True)
            mount(fstype, mp, fstype, 0, opts)
            base = os.path.join(mp, path.lstrip("/"))
            top = os.path.join(base, ident)
            hiers.append((mp, base, top))
            for d in (top, top + "/sup", top + "/payload"):
                os.mkdir(d)
                if os.path.exists(os.path.join(d, "cpuset.cpus")):  # v1 cpuset: empty until copied
                    parent = os.path.dirname(d)
                    _write(d + "/cpuset.cpus", _read(parent + "/cpuset.cpus").strip() or "\n")
                    _write(d + "/cpuset.mems", _read(parent + "/cpuset.mems").strip() or "\n")
                    _write(d + "/cgroup.clone_children", "1")
            _write(top + "/sup/cgroup.procs", str(os.getpid()))
        if stopping:
            raise RuntimeError("stopped before boot")
        child = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--uts", "--ipc", "--net", "--mount", "--propagation",
             "private", "--", sys.executable, "-I", "-S", os.path.abspath(__file__), "_pid1", state])
        pid1 = None
        while pid1 is None and child.poll() is None and not stopping:
            try:
                kids = _read(f"/proc/{child.pid}/task/{child.pid}/children").split()
            except OSError:
                kids = []
            if kids:
                pid1 = int(kids[0])
                pidns = os.readlink(f"/proc/{pid1}/ns/pid")
                _write(os.path.join(state, "pidns"), pidns)
                _write(os.path.join(state, "pid1"), str(pid1))
            else:
                time.sleep(0.005)
        while child.poll() is None and not stopping:
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        if child.poll() is None:
            _poweroff(child, pid1)
    except Exception as e:  # noqa: BLE001 - reported, then cleaned up
        print(f"sdns supervisor: {e}", file=sys.stderr, flush=True)
        report["error"] = str(e)
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    finally:
        report["left"] += _remove_tree(hiers, ident)
        for mp, _b, _t in reversed(hiers):
            try:
                umount(mp, MNT_DETACH)
            except OSError:
                pass
        _write(os.path.join(state, "down.json"), json.dumps(report))
    sys.exit(1 if report["left"] or report.get("error") else 0)


def _poweroff(child, pid1, timeout=20):
    """systemd's poweroff (SIGRTMIN+4 to PID 1), SIGKILL if it takes too long.
    Killing PID 1 kills its whole pid namespace."""
    if pid1:
        try:
            os.kill(pid1, signal.SIGRTMIN + 4)
        except ProcessLookupError:
            pass
    try:
        child.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        print("sdns supervisor: poweroff timed out, SIGKILL", file=sys.stderr, flush=True)
    if pid1:
        try:
            os.kill(pid1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.kill()
    child.wait()


def _remove_tree(hiers, ident):
    """Kill whatever is left in our groups and remove them (deepest first);
    returns what could not be removed."""
    left = []
    for _mp, base, top in hiers:
        try:
            _write(os.path.join(base, "cgroup.procs"), str(os.getpid()))
        except OSError:
            pass
    for attempt in range(50):
        left = []
        for _mp, _base, top in hiers:
            if not os.path.isdir(top):
                continue
            if os.path.exists(top + "/cgroup.kill"):
                try:
                    _write(top + "/cgroup.kill", "1")
                except OSError:
                    pass
            dirs = [b for b, _ds, _fs in os.walk(top)]
            for d in dirs:  # v1 has no cgroup.kill
                try:
                    for pid in _read(d + "/cgroup.procs").split():
                        os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            for d in sorted(dirs, key=len, reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            if os.path.isdir(top):
                left.append(top)
        if not left:
            return []
        time.sleep(0.1)
    return left


# ------------------------------------------------------------ PID 1

def _pid1(state):
    """PID 1 of the new namespaces: enter payload/, new cgroup namespace,
    build the root, pivot, exec systemd."""
    with open(os.path.join(state, "config.json")) as f:
        cfg = json.load(f)
    libc = _libc()
    ident, mode = cfg["id"], cfg["mode"]
    with open(os.path.join(state, "hierarchies.json")) as f:
        hiers = json.load(f)
    for _fstype, _opts, name, path in hiers:
        _write(os.path.join(state, "cg", name, path.lstrip("/"), ident, "payload", "cgroup.procs"), "0")
    for _fstype, _opts, name, _path in reversed(hiers):
        umount(os.path.join(state, "cg", name), MNT_DETACH)
    _check(libc.unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)")

    root, rw = os.path.join(state, "root"), os.path.join(state, "rw")
    os.makedirs(root, exist_ok=True)
    os.makedirs(rw, exist_ok=True)
    mount("sdns-rw", rw, "tmpfs", 0, "mode=755")
    os.mkdir(rw + "/upper")
    os.mkdir(rw + "/work")
    mount("sdns-root", root, "overlay", 0, f"lowerdir=/,upperdir={rw}/upper,workdir={rw}/work")

    units = root + "/etc/systemd/system"
    mount("sdns-units", units, "tmpfs", 0, "mode=755")
    for m in MASKED:
        os.symlink("/dev/null", os.path.join(units, m))
    _write(os.path.join(units, TARGET),
           "[Unit]\nDescription=ocirun test: minimal boot target of a private systemd\n"
           "Requires=sysinit.target dbus.socket\nWants=dbus.service\n"
           "After=sysinit.target dbus.socket dbus.service\nAllowIsolate=yes\n")

    nodev = MS_NOSUID | MS_NODEV | MS_NOEXEC
    mount("proc", root + "/proc", "proc", nodev)
    for p in ("sys", "sysrq-trigger") if cfg["readonly_proc_sys"] else ("sysrq-trigger",):
        t = f"{root}/proc/{p}"
        if os.path.exists(t):
            mount(t, t, None, MS_BIND)
            mount(None, t, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    mount("sysfs", root + "/sys", "sysfs", MS_RDONLY | nodev)
    cg = root + "/sys/fs/cgroup"
    if mode == "unified":
        mount("cgroup2", cg, "cgroup2", nodev)
    else:
        mount("sdns-cgroup", cg, "tmpfs", nodev, "mode=755")
        for fstype, opts, name, _path in hiers:
            os.mkdir(os.path.join(cg, name))
            mount("cgroup", os.path.join(cg, name), fstype, nodev, opts)
            if "," in name:  # cpu,cpuacct: the names systemd looks for
                for part in name.split(","):
                    os.symlink(name, os.path.join(cg, part))
        mount(None, cg, None, MS_REMOUNT | MS_RDONLY | nodev, "mode=755")

    dev = root + "/dev"
    mount("sdns-dev", dev, "tmpfs", MS_NOSUID, "mode=755,size=1m")
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):
        os.mknod(f"{dev}/{name}", 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)
    os.mkdir(dev + "/net", 0o755)
    os.mknod(dev + "/net/tun", 0o666 | 0o020000, os.makedev(10, 200))
    os.mknod(dev + "/fuse", 0o666 | 0o020000, os.makedev(10, 229))
    os.mkdir(dev + "/pts", 0o755)
    mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620,gid=5")
    os.symlink("pts/ptmx", dev + "/ptmx")
    os.symlink("/proc/self/fd", dev + "/fd")
    for i, n in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{dev}/{n}")
    os.mkdir(dev + "/shm")
    mount("sdns-shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    _write(dev + "/console", "")
    mount("/dev/null", dev + "/console", None, MS_BIND)
    mount("sdns-run", root + "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    # /tmp: the host's, copy-on-write (a runtime or bundle under the host's
    # /tmp is visible, nothing written inside reaches the host); its boot
    # cleanup (tmpfiles' "D /tmp") masked, it would hide the host's files
    rwtmp = os.path.join(state, "rwtmp")
    os.makedirs(rwtmp, exist_ok=True)
    mount("sdns-rwtmp", rwtmp, "tmpfs", 0, "mode=755")
    os.mkdir(rwtmp + "/upper", 0o1777)
    os.chmod(rwtmp + "/upper", 0o1777)
    os.mkdir(rwtmp + "/work")
    mount("sdns-tmp", root + "/tmp", "overlay", MS_NOSUID | MS_NODEV,
          f"lowerdir=/tmp,upperdir={rwtmp}/upper,workdir={rwtmp}/work")
    os.makedirs(root + "/etc/tmpfiles.d", exist_ok=True)
    for conf in ("tmp.conf", "x11.conf"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{root}/etc/tmpfiles.d/{conf}")
        os.symlink("/dev/null", f"{root}/etc/tmpfiles.d/{conf}")
    for t in cfg["tmpfs"]:
        os.makedirs(root + t, exist_ok=True)
        mount("sdns-extra", root + t, "tmpfs", 0, "mode=711")
    for b in cfg["binds"]:
        os.makedirs(root + b, exist_ok=True)
        mount(b, root + b, None, MS_BIND | MS_REC)

    os.chdir(root)
    os.mkdir(".sdns-oldroot")
    _check(libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b".sdns-oldroot"), "pivot_root")
    os.chdir("/")
    _write(f"/.sdns-oldroot{state}/pivoted", "")
    umount("/.sdns-oldroot", MNT_DETACH)
    os.rmdir("/.sdns-oldroot")
    for cap in DROP_CAPS.values():
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.execve(SYSTEMD, [SYSTEMD, f"--unit={TARGET}", "--show-status=no"],
              {"container": "ocirun-tests", "TERM": "dumb",
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})


if __name__ == "__main__":
    {"_supervise": _supervise, "_pid1": _pid1}[sys.argv[1]](sys.argv[2])
