"""What the container itself observes: namespaces, rootfs, mounts, /dev,
process attributes.  Each test has the container print what it sees."""

import json
import os
import subprocess

import pytest

from tests.conftest import FdSocket, read_until


def ns_of(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_namespaces_are_new(env):
    r = env.sh("for n in pid net ipc uts mnt cgroup; do echo $n $(readlink /proc/self/ns/$n); done; echo pid1 $$")
    assert r.returncode == 0, r.stderr
    seen = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert seen.pop("pid1") == "1"
    assert len(seen) == 6
    for kind, link in seen.items():
        assert link != ns_of("self", kind), kind


def test_join_existing_namespace_by_path(env):
    holder = subprocess.Popen(["unshare", "--net", "--uts", "sleep", "100"])
    try:
        import time

        for _ in range(50):
            if ns_of(holder.pid, "net") != ns_of("self", "net"):
                break
            time.sleep(0.02)
        want = ns_of(holder.pid, "net")
        env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "network"]
        env.cfg["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{holder.pid}/ns/net"})
        r = env.sh("readlink /proc/self/ns/net")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == want
    finally:
        holder.kill()
        holder.wait()


def test_sysfs_fallback_is_readonly_recursively(env):
    """A user namespace without a network namespace cannot mount sysfs: the
    host's /sys is bound instead (runc), and what the config asks (ro,
    nosuid, nodev, noexec) holds for every submount, not just the top."""
    env.cfg["linux"]["namespaces"] = [ns for ns in env.cfg["linux"]["namespaces"] if ns["type"] != "network"]
    env.use_userns()
    r = env.sh("cat /proc/self/mountinfo")
    assert r.returncode == 0, r.stderr
    under = [line.split() for line in r.stdout.splitlines() if line.split()[4].startswith("/sys")]
    assert len(under) > 2, r.stdout  # the host's submounts came along
    for f in under:
        opts = f[5].split(",")
        assert "ro" in opts and {"nosuid", "nodev", "noexec"} <= set(opts), f


def test_sysfs_fallback_hides_the_hosts_cgroups(env):
    """The bound host /sys carries the host's cgroup hierarchies (roots and
    every other group): without a cgroup mount of the config's the container
    sees an empty read-only directory there, never the host's tree (G17)."""
    env.cfg["linux"]["namespaces"] = [ns for ns in env.cfg["linux"]["namespaces"] if ns["type"] != "network"]
    env.cfg["mounts"] = [m for m in env.cfg["mounts"] if m.get("type") != "cgroup"]
    env.use_userns()
    r = env.sh("ls -A /sys/fs/cgroup | wc -l; touch /sys/fs/cgroup/x 2>/dev/null || echo ro; ls /sys/class/net | wc -l")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[0] == "0" and out[1] == "ro" and int(out[2]) > 0, (r.stdout, r.stderr)


def test_user_namespace_maps_and_root(env):
    env.use_userns()
    r = env.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ln /dev/null")
    assert r.returncode == 0, r.stderr
    lines = [" ".join(x.split()) for x in r.stdout.splitlines()]
    assert lines[0] == "0 100000 65536" and lines[1] == "0 100000 65536"
    assert lines[2] == "0"
    assert "1, 3" in lines[3]  # the host's null device, bind-mounted


def test_time_namespace_offsets(env):
    env.cfg["linux"]["namespaces"].append({"type": "time"})
    env.cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400 * 365, "nanosecs": 0},
                                       "boottime": {"secs": 7200, "nanosecs": 0}}
    r = env.sh("cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert any(line.split()[:2] == ["monotonic", str(86400 * 365)] for line in lines if line.strip())
    with open("/proc/uptime") as f:
        host_up = int(f.read().split(".")[0])
    assert int(lines[-2]) >= host_up + 7200 - 5


def test_hostname_domainname(env):
    env.cfg["hostname"] = "box1"
    env.cfg["domainname"] = "example.org"
    r = env.sh("hostname; cat /proc/sys/kernel/domainname")
    assert r.stdout.split() == ["box1", "example.org"], r.stderr
    assert os.uname().nodename != "box1"


def test_rootfs_is_root_and_readonly(env):
    env.cfg["root"]["readonly"] = True
    r = env.sh("ls /; touch /x 2>&1; echo rc=$?; awk '$5 == \"/\"' /proc/self/mountinfo")
    out = r.stdout
    assert "bin" in out.split() and "Read-only file system" in out and "rc=1" in out
    root_line = out.splitlines()[-1]
    assert root_line.split()[4] == "/"
    assert " ro," in root_line or " ro " in root_line
    assert "shared:" not in root_line  # private by default: nothing propagates to the host


def test_no_pivot(env):
    env.cfg["root"]["readonly"] = False
    env.cfg["process"]["args"] = ["sh", "-c", "ls /bin/busybox && cat /proc/self/mountinfo | wc -l"]
    env.write()
    r = env.cli("run", "--no-pivot", "-b", env.bundle, env.new_id())
    assert r.returncode == 0, r.stderr
    assert "/bin/busybox" in r.stdout


def test_mounts_bind_tmpfs_options(env, tmp_path):
    host = tmp_path / "vol"
    host.mkdir()
    (host / "f").write_text("from-host")
    (host / "sub").mkdir()
    env.cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(host), "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/rw", "type": "bind", "source": str(host), "options": ["bind"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec"]},
        {"destination": "/deep/a/b", "type": "tmpfs", "source": "tmpfs", "options": []},
    ]
    r = env.sh("cat /data/f; echo; touch /data/x 2>&1; echo x > /rw/written; "
               "grep -E ' /(data|scratch|deep/a/b) ' /proc/self/mountinfo; stat -c %a /scratch")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("from-host") and "Read-only file system" in out
    assert (host / "written").read_text() == "x\n"
    data = [line for line in out.splitlines() if " /data " in line][0]
    assert data.split()[5].startswith("ro,") and "nosuid" in data.split()[5]
    scratch = [line for line in out.splitlines() if " /scratch " in line][0]
    assert "noexec" in scratch and "size=1024k" in scratch
    assert out.strip().endswith("1777")
    assert any(" /deep/a/b " in line for line in out.splitlines())


def test_recursive_readonly(env, tmp_path):
    host = tmp_path / "vol"
    (host / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(host / "inner")], check=True)
    try:
        env.cfg["mounts"].append({"destination": "/v", "type": "bind", "source": str(host),
                                  "options": ["rbind", "rro"]})
        r = env.sh("touch /v/inner/x 2>&1; grep ' /v/inner ' /proc/self/mountinfo")
        assert "Read-only file system" in r.stdout
        assert r.stdout.splitlines()[-1].split()[5].startswith("ro")
    finally:
        subprocess.run(["umount", str(host / "inner")], check=True)


def test_dev_setup(env):
    r = env.sh("ls -l /dev/null /dev/zero /dev/full /dev/tty /dev/random /dev/urandom | "
               "awk '{print $10, $1, $5 $6}'; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; "
               "ls -d /dev/pts /dev/shm /dev/mqueue; echo hi > /dev/null && echo null-ok")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for name, mm in [("null", "1,3"), ("zero", "1,5"), ("full", "1,7"), ("tty", "5,0"), ("random", "1,8"),
                     ("urandom", "1,9")]:
        assert any(line.startswith(f"/dev/{name} crw-rw-rw- {mm}") for line in out.splitlines()), (name, out)
    for link in ("/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"):
        assert link in out.split()
    assert "null-ok" in out


def test_linux_devices(env):
    env.cfg["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 12, "gid": 34},
        {"path": "/dev/mypipe", "type": "p"},
    ]
    r = env.sh("ls -ln /dev/fuse /dev/mypipe")
    lines = {line.split()[-1]: line.split() for line in r.stdout.splitlines()}
    assert lines["/dev/fuse"][0] == "crw-------" and lines["/dev/fuse"][2:6] == ["12", "34", "10,", "229"]
    assert lines["/dev/mypipe"][0].startswith("p")


def test_masked_and_readonly_paths(env):
    with open("/proc/timer_list", "rb") as f:
        assert f.read(10)  # not empty on the host
    assert os.listdir("/sys/firmware")
    r = env.sh("cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; "
               "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; umount /proc/timer_list 2>&1; "
               "cat /proc/timer_list | wc -c; grep -E ' /proc/(timer_list|sys) ' /proc/self/mountinfo")
    out = r.stdout.splitlines()
    assert out[0].strip() == "0"  # masked with the null device
    assert out[1].strip() == "0"  # masked dir: empty read-only tmpfs
    assert "Read-only file system" in r.stdout
    # the container (no CAP_SYS_ADMIN) cannot remove the mask
    assert "Operation not permitted" in r.stdout and out[4].strip() == "0"
    sys_line = [line for line in out if " /proc/sys " in line][0]
    assert sys_line.split()[5].startswith("ro")


def test_sysctl(env):
    with open("/proc/sys/kernel/shmmni") as f:
        host_before = f.read()
    assert host_before.strip() != "2048"
    env.cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"}
    r = env.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    assert r.stdout.split() == ["1", "2048"], r.stderr
    # written in the container's ipc namespace, not the host's
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read() == host_before


def test_loopback_up(env):
    r = env.sh("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; ls /sys/class/net")
    lines = r.stdout.split()
    assert int(lines[1], 16) & 1, r.stdout  # IFF_UP
    assert lines[2:] == ["lo"]


def test_process_user_env_cwd_umask(env):
    env.cfg["root"]["readonly"] = False
    env.cfg["process"]["user"] = {"uid": 1234, "gid": 5678, "additionalGids": [11, 22], "umask": 0o027}
    env.cfg["process"]["cwd"] = "/work/dir"
    env.cfg["process"]["env"].append("FOO=bar baz")
    r = env.sh("id -u; id -g; id -G; pwd; echo $FOO; echo $HOME; umask; grep -E 'Groups' /proc/self/status")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "1234" and out[1] == "5678" and out[2].split() == ["5678", "11", "22"]
    assert out[3] == "/work/dir" and out[4] == "bar baz" and out[5] == "/" and out[6] == "0027"
    assert os.path.isdir(os.path.join(env.rootfs, "work", "dir"))  # created as runc does


def test_home_from_passwd(env):
    r = env.sh("echo $HOME")
    assert r.stdout.strip() == "/root"


def test_rlimits_and_oom_score_adj(env):
    env.cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                                     {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    env.cfg["process"]["oomScoreAdj"] = 500
    r = env.sh("ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj")
    assert r.stdout.split() == ["512", "768", "0", "500"], r.stderr


def test_capabilities_and_nnp(env):
    r = env.sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
    st = dict(line.split(":\t") for line in r.stdout.splitlines())
    want = (1 << 29) | (1 << 5) | (1 << 10)  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    for k in ("CapBnd", "CapEff", "CapPrm"):
        assert int(st[k], 16) == want, (k, st)
    # G12: inheritable is empty unless configured, and ambient entries that
    # are not inheritable are dropped rather than added to inheritable
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "1"


def _cap_sets(text):
    st = dict(line.split(":\t") for line in text.splitlines() if line.startswith("Cap"))
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_absent_capabilities_give_empty_sets(env):
    """Deny by default: without process.capabilities the init gets all five
    sets empty (runc), never the runtime's own; for run and create+start."""
    del env.cfg["process"]["capabilities"]
    r = env.sh("grep -E '^Cap' /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert _cap_sets(r.stdout) == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0), r.stdout
    env.cfg["root"]["readonly"] = False
    cid = env.create(["sh", "-c", "grep -E '^Cap' /proc/self/status > /caps.tmp; mv /caps.tmp /caps; sleep 100"])
    assert env.cli("start", cid).returncode == 0
    assert env.wait_file(os.path.join(env.rootfs, "caps"))
    with open(os.path.join(env.rootfs, "caps")) as f:
        assert set(_cap_sets(f.read()).values()) == {0}
    assert env.cli("delete", "--force", cid).returncode == 0


def test_ambient_capabilities_for_non_root(env):
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    env.cfg["process"]["capabilities"] = {k: list(caps) for k in
                                          ("bounding", "effective", "permitted", "inheritable", "ambient")}
    env.cfg["process"]["capabilities"]["ambient"] = ["CAP_NET_BIND_SERVICE"]
    r = env.sh("grep -E '^Cap' /proc/self/status")
    st = dict(line.split(":\t") for line in r.stdout.splitlines())
    both = (1 << 10) | (1 << 5)
    assert int(st["CapInh"], 16) == both and int(st["CapBnd"], 16) == both
    assert int(st["CapAmb"], 16) == 1 << 10
    # after execve as uid 1000, the effective set is what ambient carried over
    assert int(st["CapEff"], 16) == 1 << 10 and int(st["CapPrm"], 16) == 1 << 10


def test_cgroup_mount_is_readonly(env):
    r = env.sh("ls /sys/fs/cgroup; mkdir /sys/fs/cgroup/memory/x 2>&1; echo rc=$?")
    assert "memory" in r.stdout.split() and "rc=1" in r.stdout


def test_console_socket(env, console_socket):
    env.cfg["process"]["terminal"] = True
    env.cfg["process"]["consoleSize"] = {"height": 30, "width": 100}
    cid = env.create(["sh", "-c", "stty size; tty; echo done"], extra=("--console-socket", console_socket.path))
    msg, master = console_socket.receive()
    assert msg == b"/dev/ptmx"
    assert env.cli("start", cid).returncode == 0
    text = read_until(master, b"done").decode().replace("\r", "")
    assert "30 100" in text and "/dev/pts/0" in text, text
    env.wait_status(cid, "stopped")
    assert env.cli("delete", cid).returncode == 0


def test_run_foreground_terminal_relay(env):
    """run with process.terminal in the foreground: ocirun relays its own
    terminal (raw mode, window size) to the container's pty."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    env.cfg["process"]["terminal"] = True
    env.cfg["process"]["args"] = ["sh", "-c", "tty; stty size; read x; echo got-$x; exit 3"]
    env.write()
    cid = env.new_id()
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
        os.execv(env.cmd[0], env.cmd + ["--root", env.root, "run", "-b", env.bundle, cid])
    out = b""

    def pump(until, timeout=10):
        nonlocal out
        end = time.monotonic() + timeout
        while until not in out and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return

    pump(b"33 99")
    os.write(fd, b"hello\n")
    pump(b"got-hello")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace").replace("\r", "")
    assert "/dev/pts/0" in text and "33 99" in text and "got-hello" in text, text
    assert os.waitstatus_to_exitcode(status) == 3


def test_scheduler_iopriority_personality(env):
    env.cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    env.cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    env.cfg["linux"]["personality"] = {"domain": "LINUX32"}
    r = env.sh("cut -d' ' -f19,41 /proc/self/stat; uname -m; ionice -p $$")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["5", "3"]  # nice 5, policy SCHED_BATCH
    assert lines[1] in ("i686", "i386")
    assert "best-effort" in lines[2] and "6" in lines[2]


def test_exec_cpu_affinity(env):
    if os.cpu_count() < 2:
        pytest.skip("needs 2 cpus")
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.cfg["process"]["execCPUAffinity"] = {"final": "1"}
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    try:
        r = env.cli("exec", cid, "sh", "-c", "grep Cpus_allowed_list /proc/self/status")
        assert r.stdout.split()[-1] == "1", r.stdout + r.stderr
        # not applicable to the init itself
        with open(f"/proc/{env.state(cid)['pid']}/status") as f:
            assert [line for line in f if line.startswith("Cpus_allowed_list")][0].split()[-1] != "1"
    finally:
        env.cli("delete", "-f", cid)


@pytest.mark.parametrize("field,value,words", [
    ("scheduler", {"policy": "SCHED_FIFO"}, "process.scheduler.priority"),
    ("scheduler", {"policy": "SCHED_MAGIC"}, "process.scheduler.policy"),
    ("ioPriority", {"class": "IOPRIO_CLASS_X"}, "process.ioPriority.class"),
    ("capabilities", {"bogus": ["CAP_KILL"]}, "process.capabilities.bogus"),
])
def test_bad_process_fields(env, field, value, words):
    env.cfg["process"][field] = value
    r = env.run(["true"])
    assert r.returncode == 1 and words in r.stderr, r.stderr


def test_tmpcopyup(env):
    etc = os.path.join(env.rootfs, "etc")
    os.makedirs(os.path.join(etc, "sub"))
    with open(os.path.join(etc, "sub", "f"), "w") as f:
        f.write("kept\n")
    os.symlink("sub/f", os.path.join(etc, "link"))
    os.chmod(os.path.join(etc, "sub"), 0o750)
    env.cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                              "options": ["tmpcopyup", "mode=755"]})
    r = env.sh("stat -f -c %T /etc; cat /etc/link; stat -c %a /etc/sub; grep -c root /etc/passwd; "
               "echo new > /etc/new && echo wrote")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["tmpfs", "kept", "750", "1", "wrote"]
    assert not os.path.exists(os.path.join(etc, "new"))  # written to the tmpfs only


def test_join_mount_and_uts_namespaces_by_path(env):
    """runc joins a mount namespace by path and sets the hostname in a
    joined UTS namespace."""
    import time

    holder = subprocess.Popen(["unshare", "--mount", "--uts", "--propagation", "private", "sleep", "100"])
    try:
        for _ in range(50):
            if ns_of(holder.pid, "mnt") != ns_of("self", "mnt"):
                break
            time.sleep(0.02)
        want_mnt, want_uts = ns_of(holder.pid, "mnt"), ns_of(holder.pid, "uts")
        env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] not in ("mount", "uts")]
        env.cfg["linux"]["namespaces"] += [{"type": "mount", "path": f"/proc/{holder.pid}/ns/mnt"},
                                           {"type": "uts", "path": f"/proc/{holder.pid}/ns/uts"}]
        env.cfg["hostname"] = "joined"
        r = env.sh("readlink /proc/self/ns/mnt /proc/self/ns/uts 2>/dev/null || "
                   "(readlink /proc/self/ns/mnt; readlink /proc/self/ns/uts); hostname")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert want_mnt in lines and want_uts in lines and lines[-1] == "joined"
    finally:
        holder.kill()
        holder.wait()


def test_rootfs_propagation_applied_to_the_container_root(env):
    for prop, tag in (("unbindable", "unbindable"), ("rslave", None)):
        env.cfg["linux"]["rootfsPropagation"] = prop
        r = env.sh("awk '$5 == \"/\"' /proc/self/mountinfo")
        assert r.returncode == 0, r.stderr
        fields = r.stdout.split()
        if tag:
            assert tag in fields, r.stdout
        assert not any(f.startswith("shared:") for f in fields)


def test_idmapped_mounts(env, tmp_path):
    """Files owned by host root appear as the container's root through an
    idmapped bind mount, and as nobody through a plain one."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("x")
    os.chmod(vol, 0o755)
    os.chmod(tmp_path, 0o755)
    env.use_userns()
    env.cfg["mounts"] += [
        {"destination": "/idm", "type": "bind", "source": str(vol), "options": ["bind", "idmap"]},
        {"destination": "/own", "type": "bind", "source": str(vol), "options": ["rbind", "ridmap"],
         "uidMappings": [{"containerID": 0, "hostID": 4000, "size": 10}],
         "gidMappings": [{"containerID": 0, "hostID": 4000, "size": 10}]},
        {"destination": "/plain", "type": "bind", "source": str(vol), "options": ["bind"]},
    ]
    r = env.sh("stat -c %u:%g /idm/f /own/f /plain/f; grep -c idmapped /proc/self/mountinfo")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "0:0"            # host 0 -> 100000 -> container 0
    assert lines[1] == "65534:65534"    # host 0 -> 4000 (own mappings) -> unmapped in the container
    assert lines[2] == "65534:65534"    # not idmapped
    assert int(lines[3]) >= 2


def test_idmap_errors(env, tmp_path):
    env.cfg["mounts"].append({"destination": "/idm", "type": "bind", "source": str(tmp_path), "options": ["idmap"]})
    r = env.run(["true"])
    assert r.returncode == 1 and "idmap without mount mappings needs a new user namespace" in r.stderr
    env.cfg["mounts"][-1] = {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                             "uidMappings": [{"containerID": 0, "hostID": 4000, "size": 1}],
                             "gidMappings": [{"containerID": 0, "hostID": 4000, "size": 1}]}
    r = env.run(["true"])
    assert r.returncode == 1 and "only supported for bind mounts" in r.stderr


def _numa_policy(text):
    """The policy field of the first mapping in a numa_maps dump."""
    first = next(line for line in text.splitlines() if line[:1].isalnum() and " " in line)
    return first.split()[1]


@pytest.mark.parametrize("policy,seen", [
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
])
def test_memory_policy(env, policy, seen):
    """linux.memoryPolicy is the policy of the container's process (and of
    what it starts), as its own numa_maps shows."""
    env.cfg["linux"]["memoryPolicy"] = policy
    r = env.sh("cat /proc/self/numa_maps; echo ---; cat /proc/$$/numa_maps")
    assert r.returncode == 0, r.stderr
    child, shell = r.stdout.split("---")
    assert _numa_policy(child) == seen and _numa_policy(shell) == seen, r.stdout[:400]


def test_memory_policy_reaches_exec(env):
    env.cfg["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    r = env.cli("exec", cid, "cat", "/proc/self/numa_maps")
    assert r.returncode == 0 and _numa_policy(r.stdout) == "interleave:0", r.stdout[:300] + r.stderr
    assert env.cli("delete", "--force", cid).returncode == 0


def test_memory_policy_on_a_missing_node(env):
    with open("/sys/devices/system/node/online") as f:
        online = f.read().strip()
    if online != "0":
        pytest.skip(f"this host has NUMA nodes {online}")
    env.cfg["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "63"}
    r = env.sh("true")
    assert r.returncode == 1
    assert "linux.memoryPolicy: set_mempolicy: invalid argument" in r.stderr, r.stderr
    assert env.cli("list", "-q").stdout.split() == []


def test_sysctls_that_conflict_with_hostname_fields(env):
    """kernel.domainname alone is how docker sets --domainname: accepted.
    kernel.hostname conflicts with the `hostname` field, and
    kernel.domainname with the `domainname` field: refused, as runc does,
    before anything exists."""
    env.cfg["linux"]["sysctl"] = {"kernel.domainname": "via-sysctl.example"}
    r = env.sh("cat /proc/sys/kernel/domainname")
    assert r.returncode == 0 and r.stdout == "via-sysctl.example\n", r.stderr
    for extra, key, field in (({}, "kernel.hostname", "hostname"), ({"hostname": "h"}, "kernel.hostname", "hostname"),
                              ({"domainname": "f.example"}, "kernel.domainname", "domainname")):
        cfg = dict(env.cfg, **extra)
        cfg["linux"] = dict(env.cfg["linux"], sysctl={key: "x"})
        env.write(cfg)
        cid = env.new_id()
        r = env.cli("run", "-b", env.bundle, cid)
        assert r.returncode == 1, r.stderr
        msg = json.loads(r.stderr.split(" msg=", 1)[1])  # logrus quotes the message
        assert msg == (f'ocirun run failed: linux.sysctl.{key}: sysctl "{key}" is not allowed as it conflicts '
                       f'with the OCI "{field}" field'), r.stderr
        assert not os.path.exists(os.path.join(env.root, cid))


@pytest.mark.parametrize("target", ["../usr/lib/passwd", "/usr/lib/passwd"])
def test_home_from_passwd_symlink(env, target):
    """The image's /etc/passwd may be a symlink inside the rootfs (relative or
    absolute): it is followed in-root, as root, before the uid changes."""
    etc = os.path.join(env.rootfs, "etc")
    os.makedirs(os.path.join(env.rootfs, "usr", "lib"), exist_ok=True)
    with open(os.path.join(env.rootfs, "usr", "lib", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
    os.chmod(os.path.join(env.rootfs, "usr", "lib", "passwd"), 0o600)  # only root can read it
    os.unlink(os.path.join(etc, "passwd"))
    os.symlink(target, os.path.join(etc, "passwd"))
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = env.sh("echo $HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/home/u"


def test_home_passwd_symlink_out_of_root_stays_in_root(env, tmp_path):
    """A symlink to an absolute host path is resolved inside the rootfs: the
    host's file is never read."""
    host = tmp_path / "hostpasswd"
    host.write_text("root:x:0:0:root:/HOSTFILE:/bin/sh\n")
    passwd = os.path.join(env.rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.symlink("../../../../../../../.." + str(host), passwd)
    r = env.sh("echo $HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/"


def test_cwd_entered_as_root_before_dropping(env):
    """runc enters process.cwd as root, then drops to the user: a directory
    only root may enter still works as the working directory."""
    env.cfg["root"]["readonly"] = False
    secret = os.path.join(env.rootfs, "secret")
    os.mkdir(secret, 0o700)
    os.chmod(secret, 0o700)
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    env.cfg["process"]["cwd"] = "/secret"
    r = env.sh("pwd; id -u; ls . 2>&1 >/dev/null; echo ls=$?")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "/secret" and out[1] == "1000", r.stdout
    assert out[-1] == "ls=1", r.stdout  # it is in there, but still may not read it


def test_cwd_refused_to_root_retried_as_user(env):
    """runc's other half: when root may not enter the cwd (EACCES), it is
    tried again after the switch to the process user, who may."""
    env.use_userns()
    env.cfg["root"]["readonly"] = False
    d = os.path.join(env.rootfs, "grp")
    os.mkdir(d)
    os.chown(d, 0, 101000)  # owner unmapped: the container's root has no override on it
    os.chmod(d, 0o070)
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    env.cfg["process"]["cwd"] = "/grp"
    r = env.sh("pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/grp"


def test_stdio_pipe_owned_by_process_user(env):
    """As runc: the process user owns its stdio pipe, so it can reopen
    /dev/stdin; a regular file given as stdout keeps its owner."""
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = env.sh("stat -L -c '%u' /proc/self/fd/0; stat -L -c '%u' /proc/self/fd/1; cat /dev/stdin", input="piped\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1000", "0", "piped"], r.stdout


def _console_output(env, tmp_path, args, user):
    sock = FdSocket(str(tmp_path / "console2.sock"))
    try:
        env.cfg["process"]["terminal"] = True
        env.cfg["process"]["user"] = user
        cid = env.create(args, extra=("--console-socket", sock.path))
        _msg, master = sock.receive()
        assert env.cli("start", cid).returncode == 0
        out = read_until(master, b"done")
    finally:
        sock.close()
    env.wait_status(cid, "stopped")
    assert env.cli("delete", "--force", cid).returncode == 0
    return out.decode().replace("\r", "")


def test_terminal_owned_by_process_user(env, tmp_path):
    """runc gives the console to the process uid (the group stays devpts'
    tty group): a non-root process can reopen its own terminal."""
    text = _console_output(env, tmp_path, ["sh", "-c", "stat -c 'owner=%u:%g' $(tty); echo hi > $(tty) && echo wrote; echo done"],
                           {"uid": 1000, "gid": 1000})
    assert "owner=1000:5" in text, text
    assert "wrote" in text, text


def _superblocks_in_mount_ns(pid):
    """(major, minor) of the superblock of every mount in the mount
    namespace of `pid`, reachable from its root or not (listmount/statmount,
    Linux 6.8+, namespace by id 6.11+)."""
    return {m[:2] for m in _mounts_in_ns(pid)}


def _mounts_in_ns(pid):
    """(sb major, sb minor, fs magic, mount id, parent mount id) of every
    mount in the mount namespace of `pid`."""
    import ctypes
    import fcntl
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, 0x8008B705, buf)  # NS_GET_MNTNS_ID
        nsid = struct.unpack("Q", buf)[0]
    except OSError:
        pytest.skip("the kernel cannot name a mount namespace by id")
    finally:
        os.close(fd)
    req = ctypes.create_string_buffer(struct.pack("IIQQQ", 32, 0, (1 << 64) - 1, 0, nsid))  # LSMT_ROOT
    ids = (ctypes.c_uint64 * 4096)()
    n = libc.syscall(458, req, ids, 4096, 0)  # listmount
    if n < 0:
        pytest.skip(f"listmount: {os.strerror(ctypes.get_errno())}")
    out = []
    for mid in ids[:n]:
        req = ctypes.create_string_buffer(struct.pack("IIQQQ", 32, 0, mid, 3, nsid))  # STATMOUNT_SB_BASIC|MNT_BASIC
        sm = ctypes.create_string_buffer(4096)
        assert libc.syscall(457, req, sm, 4096, 0) == 0, os.strerror(ctypes.get_errno())
        major, minor, magic = struct.unpack_from("IIQ", sm.raw, 16)
        mnt_id, parent = struct.unpack_from("QQ", sm.raw, 40)
        out.append((major, minor, magic, mnt_id, parent))
    return out


def test_no_pivot_hides_the_hosts_procfs(env):
    """With --no-pivot the host's mounts stay in the container's mount
    namespace under the chroot.  A full procfs or sysfs among them lets a
    nested user namespace mount a fresh, unmasked one (the kernel allows it
    when a full one is already in the namespace): as runc does, they are
    detached before the chroot.  Looked at from the host, through every
    mount of the container's namespace (reachable from its root or not)."""
    env.cfg["root"]["readonly"] = False
    cid = env.create(["sleep", "100"], extra=("--no-pivot",))
    try:
        pid = env.state(cid)["pid"]
        sbs = _superblocks_in_mount_ns(pid)
        for host in ("/proc", "/sys"):
            st = os.stat(host)
            assert (os.major(st.st_dev), os.minor(st.st_dev)) not in sbs, host
        assert len(sbs) > 3  # the container's own mounts are there
        # and the container still works: its own /proc is there
        r = env.cli("exec", cid, "sh", "-c", "ls /proc/self/status /bin/busybox")
        assert r.returncode == 0 and "/proc/self/status" in r.stdout, r.stderr
    finally:
        env.cli("delete", "--force", cid)


def test_no_pivot_in_a_user_namespace_covers_the_hosts_procfs(env):
    """In a user namespace the host's mounts are locked (they cannot be
    detached): they are covered by an empty tmpfs instead, as runc does."""
    env.use_userns()
    env.cfg["root"]["readonly"] = False
    cid = env.create(["sleep", "100"], extra=("--no-pivot",))
    try:
        pid = env.state(cid)["pid"]
        st = os.stat("/proc")
        host_proc = (os.major(st.st_dev), os.minor(st.st_dev))
        mounts = _mounts_in_ns(pid)
        host = [m for m in mounts if m[:2] == host_proc]
        assert len(host) == 1  # still there (locked), but covered by an empty tmpfs
        assert any(m[2] == 0x01021994 and m[4] == host[0][3] for m in mounts), mounts
        r = env.cli("exec", cid, "sh", "-c", "ls /proc/self/status")
        assert r.returncode == 0, r.stderr
    finally:
        env.cli("delete", "--force", cid)


def test_dev_tmpfs_read_only(env):
    """A read-only /dev tmpfs: the nodes, links and sub-mounts are made first
    and /dev becomes read-only at the end, as runc does."""
    for m in env.cfg["mounts"]:
        if m["destination"] == "/dev":
            m["options"] = [o for o in m["options"] if o != "rw"] + ["ro"]
    env.cfg["mounts"].append({"destination": "/ro-tmp", "type": "tmpfs", "source": "tmpfs",
                              "options": ["ro", "mode=700"]})
    r = env.sh("ls -l /dev/null /dev/zero /dev/pts/ptmx | wc -l; echo x > /dev/null && echo null-ok; "
               "touch /dev/new 2>&1; echo touch=$?; touch /ro-tmp/f 2>&1; echo touch2=$?; "
               "grep -E ' /dev | /ro-tmp ' /proc/self/mountinfo | cut -d' ' -f5,6")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "3" and out[1] == "null-ok", r.stdout
    assert "touch=1" in out and "touch2=1" in out, r.stdout
    assert "/dev ro," in r.stdout and "/ro-tmp ro," in r.stdout, r.stdout


def test_userns_bind_source_under_root_only_dir(env, tmp_path):
    """Bind sources are opened with the runtime's credentials, as runc does:
    a user-namespaced container gets a volume that sits under a directory
    only host root can traverse (the container's root cannot)."""
    env.use_userns()
    secret = tmp_path / "root-only"
    (secret / "vol").mkdir(parents=True)
    (secret / "vol" / "f").write_text("volume data\n")
    (secret / "file").write_text("file data\n")
    os.chmod(secret / "vol", 0o755)
    os.chmod(secret / "vol" / "f", 0o644)
    os.chmod(secret / "file", 0o644)
    os.chmod(secret, 0o700)
    os.chmod(tmp_path, 0o755)
    env.cfg["mounts"] += [
        {"destination": "/v", "type": "bind", "source": str(secret / "vol"), "options": ["rbind", "ro"]},
        {"destination": "/f", "type": "bind", "source": str(secret / "file"), "options": ["bind"]},
    ]
    r = env.sh("cat /v/f /f; touch /v/x 2>/dev/null || echo ro; grep -c ' /v ro,' /proc/self/mountinfo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:4] == ["volume data", "file data", "ro", "1"], r.stdout



def _without_mount_namespace(env, mounts=False):
    env.cfg["linux"]["namespaces"] = [n for n in env.cfg["linux"]["namespaces"] if n["type"] != "mount"]
    if not mounts:
        env.cfg["mounts"] = []
    env.cfg["linux"]["maskedPaths"] = []
    env.cfg["linux"]["readonlyPaths"] = []
    env.cfg["root"]["readonly"] = False
    with open(os.path.join(env.rootfs, "marker-in-rootfs"), "w") as f:
        f.write("x")


def _host_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4] == path or line.split()[4].startswith(path + "/")]


def test_without_mount_namespace_shares_the_runtimes_and_is_chrooted(env):
    """runc accepts a config without a mount namespace: the container shares
    the runtime's and is chrooted into root.path.  exec gets the same root,
    not the caller's; device nodes are made in the rootfs."""
    _without_mount_namespace(env)
    cid = env.create(["sleep", "100"])
    try:
        pid = env.state(cid)["pid"]
        assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
        assert os.readlink(f"/proc/{pid}/root") == env.rootfs
        assert _host_mounts_under(env.rootfs) == [env.rootfs]  # the private bind it is chrooted into
        r = env.cli("exec", cid, "sh", "-c", "ls /marker-in-rootfs; ls /proc | wc -l; echo x > /dev/null && echo ok")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["/marker-in-rootfs", "0", "ok"], r.stdout
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0
    assert _host_mounts_under(env.rootfs) == []
    import stat

    assert stat.S_ISCHR(os.stat(os.path.join(env.rootfs, "dev", "null")).st_mode)


def test_without_mount_namespace_mounts_land_in_the_hosts_until_delete(env, tmp_path):
    """The config's mounts (the default /proc, /dev, /sys … here) are made in
    the runtime's mount namespace, below a private bind of the rootfs, as runc
    does; unlike runc they are all detached at delete, and a mount the engine
    had made on the rootfs stays."""
    _without_mount_namespace(env, mounts=True)
    env.cfg["root"]["readonly"] = True
    subprocess.run(["mount", "--bind", env.rootfs, env.rootfs], check=True)  # as an engine's rootfs mount
    try:
        cid = env.create(["sleep", "100"])
        try:
            assert env.cli("start", cid).returncode == 0
            mounted = _host_mounts_under(env.rootfs)
            assert env.rootfs + "/proc" in mounted and env.rootfs + "/dev/pts" in mounted, mounted
            r = env.cli("exec", cid, "sh", "-c", "cat /proc/1/comm; touch /x 2>/dev/null || echo ro; ls /dev/pts/ptmx")
            assert r.returncode == 0, r.stderr
            assert r.stdout.split() == ["sleep", "ro", "/dev/pts/ptmx"], r.stdout
        finally:
            assert env.cli("delete", "--force", cid).returncode == 0
        assert _host_mounts_under(env.rootfs) == [env.rootfs]  # the engine's own bind is left alone
    finally:
        subprocess.run(["umount", env.rootfs], check=True)


def test_without_mount_namespace_failure_leaves_no_mount(env):
    _without_mount_namespace(env, mounts=True)
    env.cfg["mounts"].append({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["bogusopt"]})
    r = env.run(["true"])
    assert r.returncode == 1 and "error mounting mounts[7]" in r.stderr and "/bad" in r.stderr, r.stderr
    # one line, the kernel's message without its level prefix and newline (docs/design.md)
    assert "option bogusopt: tmpfs: Unknown parameter 'bogusopt': invalid argument" in r.stderr, r.stderr
    assert _host_mounts_under(env.rootfs) == []


@pytest.mark.parametrize("mutate,words", [
    (lambda c: c["linux"].__setitem__("maskedPaths", ["/proc/kcore"]),
     "linux.maskedPaths: unable to restrict sys entries without a private MNT namespace"),
    (lambda c: c["linux"].__setitem__("readonlyPaths", ["/proc/sys"]),
     "linux.readonlyPaths: unable to restrict sys entries without a private MNT namespace"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "linux.namespaces: a user namespace needs"),
])
def test_without_mount_namespace_refusals(env, mutate, words):
    _without_mount_namespace(env)
    mutate(env.cfg)
    r = env.run(["true"])
    assert r.returncode == 1 and words in r.stderr, r.stderr
    assert len(r.stderr) < 1024 and "Traceback" not in r.stderr


def test_absent_umask_is_0022_not_the_callers(env):
    """runc 1.1: an absent process.user.umask gives the init 0022, whatever
    umask the caller (an engine) runs with; an explicit one is kept."""
    env.cfg["process"]["user"] = {"uid": 0, "gid": 0}
    r = env.sh("umask", preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0 and r.stdout.strip() == "0022", (r.stdout, r.stderr)
    env.cfg["process"]["user"]["umask"] = 0o077
    r = env.sh("umask", preexec_fn=lambda: os.umask(0))
    assert r.stdout.strip() == "0077", (r.stdout, r.stderr)
