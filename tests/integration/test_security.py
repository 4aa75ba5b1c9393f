"""The rules of docs/security.md (G1-G20), each with a malicious bundle or
container process.
What the host and the container observe is asserted, never just exit codes."""

import fcntl
import os
import struct

import pytest


@pytest.fixture
def hostdir(tmp_path):
    d = tmp_path / "host-target"
    d.mkdir()
    return d


def test_g2_cwd_through_leaked_fds_never_reaches_the_host(env):
    """CVE-2024-21626: cwd /proc/self/fd/N must not land on a runtime fd."""
    for n in range(3, 9):
        env.cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
        r = env.sh("pwd; ls .. 2>&1 | head -3")
        if r.returncode == 0:
            assert not r.stdout.startswith("(unreachable)"), (n, r.stdout)
            assert r.stdout.startswith("/"), (n, r.stdout)
        else:
            assert "process.cwd" in r.stderr, r.stderr


def test_g1_no_runtime_fd_is_open_while_cwd_and_args0_are_resolved(env):
    """cwd /proc/self/fd/N and a relative args[0] must not probe host paths
    through the init's own fds (its host procfs handle, the exec fifo):
    create fails the same way whether the host file exists or not."""
    marker = os.path.join(env.tmp, "host-marker")
    with open(marker, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(marker, 0o755)
    up = "../" * 8 + env.tmp.strip("/")  # .. above a host mount climbs to the host's /
    for n in range(3, 12):
        env.cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
        seen = []
        for name in ("host-marker", "no-such-marker"):
            env.cfg["process"]["args"] = [f"{up}/{name}"]
            env.write()
            cid = env.new_id()
            r = env.cli("create", "-b", env.bundle, cid)
            if r.returncode == 0:
                env.cli("delete", "--force", cid)
            seen.append((r.returncode, r.stderr.partition("msg=")[2].replace(name, "X")))
        assert seen[0][0] == 1, (n, seen)
        assert seen[0] == seen[1], (n, seen)


def test_g3_parked_init_is_not_dumpable(env):
    env.cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = [line for line in f if line.startswith("Uid:")][0]
    assert uid_line.split()[1] == "1000"  # already the container user
    # a dumpable process's /proc entries belong to its uid; ours stay root's
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0
    assert env.cli("delete", cid).returncode == 0


def test_g3_bootstrap_of_a_root_caller_is_never_dumpable(env, tmp_path):
    """Only an unprivileged caller needs the bootstrap dumpable (so that it
    may write the id maps); for root, whose user namespace container's
    bootstrap looked unprivileged after unshare (the overflow uid), it must
    never become dumpable.  Observed with strace on the whole process tree."""
    import shutil
    import subprocess

    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    env.use_userns()
    env.cfg["process"]["args"] = ["true"]
    env.write()
    trace = tmp_path / "trace"
    cid = env.new_id()
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=prctl", "-o", str(trace)] + env.cmd
                       + ["--root", env.root, "run", "-b", env.bundle, cid], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    calls = [line for line in trace.read_text().splitlines() if "PR_SET_DUMPABLE" in line]
    assert calls, "the init sets PR_SET_DUMPABLE: strace saw none"
    assert not [line for line in calls if "SUID_DUMP_USER" in line or "PR_SET_DUMPABLE, 1)" in line], calls


def test_g4_runtime_image_is_a_sealed_memfd(env):
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exe.startswith("/memfd:ocirun-init"), exe
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        for s in (fcntl.F_SEAL_SEAL, fcntl.F_SEAL_SHRINK, fcntl.F_SEAL_GROW, fcntl.F_SEAL_WRITE):
            assert seals & s
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        os.open(f"/proc/{pid}/exe", os.O_WRONLY)
    assert env.cli("delete", cid).returncode == 0


def test_g5_absolute_symlink_mount_destination_stays_in_root(env, hostdir):
    os.symlink(str(hostdir), os.path.join(env.rootfs, "evil"))
    env.cfg["mounts"].append({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"})
    r = env.sh("stat -f -c %T /evil/sub")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "tmpfs"
    assert list(hostdir.iterdir()) == []  # nothing created on the host
    assert os.path.isdir(os.path.join(env.rootfs, str(hostdir).lstrip("/"), "sub"))


def test_g5_relative_escape_in_dev_stays_in_root(env, hostdir):
    dev = os.path.join(env.rootfs, "dev")
    os.rmdir(dev)
    os.symlink("../../../../../../../../" + str(hostdir).lstrip("/"), dev)
    # no /dev mount: devices and links are made through the image's /dev
    env.cfg["mounts"] = [m for m in env.cfg["mounts"] if not m["destination"].startswith("/dev")]
    r = env.sh("ls -l /dev/null")
    assert r.returncode == 0, r.stderr
    assert list(hostdir.iterdir()) == []
    assert os.path.exists(os.path.join(env.rootfs, str(hostdir).lstrip("/"), "null"))


def test_g5_file_bind_target_symlink_and_cwd_stay_in_root(env, hostdir, tmp_path):
    src = tmp_path / "payload"
    src.write_text("payload")
    os.symlink(str(hostdir / "file"), os.path.join(env.rootfs, "etc", "evil"))
    os.symlink(str(hostdir / "cwd"), os.path.join(env.rootfs, "work"))
    env.cfg["mounts"].append({"destination": "/etc/evil", "type": "bind", "source": str(src), "options": ["bind"]})
    env.cfg["process"]["cwd"] = "/work"
    r = env.sh("cat /etc/evil; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("payload")
    assert list(hostdir.iterdir()) == []


def test_g6_type_mismatch_is_refused(env, tmp_path):
    src = tmp_path / "afile"
    src.write_text("x")
    env.cfg["mounts"].append({"destination": "/bin", "type": "bind", "source": str(src), "options": ["bind"]})
    r = env.sh("true")
    assert r.returncode == 1
    assert "mounts[7] to rootfs at" in r.stderr and "not both directories or both files" in r.stderr


def test_g7_proc_must_be_a_real_directory(env, hostdir):
    proc = os.path.join(env.rootfs, "proc")
    os.rmdir(proc)
    os.symlink(str(hostdir), proc)
    r = env.sh("true")
    assert r.returncode == 1 and "destination must be a directory, not a symlink" in r.stderr, r.stderr
    assert list(hostdir.iterdir()) == []


def test_g7_bind_onto_proc_must_be_procfs(env, tmp_path):
    fake = tmp_path / "fakeproc"
    fake.mkdir()
    env.cfg["mounts"][0] = {"destination": "/proc", "type": "bind", "source": str(fake), "options": ["rbind"]}
    r = env.sh("true")
    assert r.returncode == 1 and "not procfs" in r.stderr, r.stderr


def test_g7_a_symlink_cannot_carry_a_mount_into_proc(env, tmp_path):
    """The image's /data -> /proc/sys/kernel: the config's bind at /data
    would land inside procfs; refused, as runc does ("inside /proc")."""
    src = tmp_path / "vol"
    src.mkdir()
    os.symlink("/proc/sys/kernel", os.path.join(env.rootfs, "data"))
    env.cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind"]})
    r = env.sh("cat /proc/sys/kernel/ostype")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "/data" in r.stderr and "a symlink leads inside /proc" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_g5_procfs_magic_links_are_never_followed(env):
    """cwd /appN -> /proc/self/fd/N in the image: the in-root walk reads the
    magic link's text (a host path: the exec fifo, the runtime's root) and
    would create that path inside the rootfs; it refuses instead, and the
    rootfs gets nothing new."""
    before = sorted(os.listdir(env.rootfs))
    for n in range(3, 9):
        os.symlink(f"/proc/self/fd/{n}", os.path.join(env.rootfs, f"app{n}"))
    for n in range(3, 9):
        env.cfg["process"]["cwd"] = f"/app{n}"
        r = env.sh("pwd")
        assert r.returncode == 1 and r.stdout == "", (n, r.stdout, r.stderr)
    assert sorted(os.listdir(env.rootfs)) == sorted(before + [f"app{n}" for n in range(3, 9)])
    for top in ("tmp", "proc", "run"):
        d = os.path.join(env.rootfs, top)
        assert not os.path.isdir(d) or os.listdir(d) == [], (top, os.listdir(d))


def test_home_is_never_read_from_a_kernel_file(env):
    """The image's /etc/passwd -> a procfs file (root, which the init still
    is while it looks HOME up, could read /proc/kmsg): only a regular file of
    a real filesystem counts; HOME stays "/"."""
    os.unlink(os.path.join(env.rootfs, "etc", "passwd"))
    os.symlink("/proc/sys/kernel/hostname", os.path.join(env.rootfs, "etc", "passwd"))
    env.cfg["hostname"] = "r:x:0:0::/LEAK:"
    env.cfg["process"]["env"] = [e for e in env.cfg["process"]["env"] if not e.startswith("HOME=")]
    r = env.sh("cat /etc/passwd; echo HOME=$HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["r:x:0:0::/LEAK:", "HOME=/"], r.stdout


def test_g9_image_dev_null_is_never_trusted(env):
    # the image ships a regular file as /dev/null and no /dev mount
    env.cfg["mounts"] = [m for m in env.cfg["mounts"] if m["destination"] != "/dev"]
    with open(os.path.join(env.rootfs, "dev", "null"), "w") as f:
        f.write("SECRET")
    r = env.sh("cat /proc/timer_list | wc -c; ls -l /dev/null | cut -c1")
    assert r.stdout.split() == ["0", "c"], r.stdout


def test_g14_container_mounts_do_not_propagate_to_host(env, hostdir):
    env.cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": str(hostdir),
                              "options": ["rbind", "rslave"]})
    env.cfg["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    env.cfg["process"]["noNewPrivileges"] = False
    r = env.sh("mkdir -p /vol/m && mount -t tmpfs none /vol/m && grep -c ' /vol/m ' /proc/self/mountinfo")
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    with open("/proc/self/mountinfo") as f:
        assert str(hostdir) not in f.read()


@pytest.mark.parametrize("bad", ["../x", "a/b", ".", "..", "with space", "x" * 2000])
def test_g15_container_ids_are_validated(env, bad):
    r = env.cli("create", "-b", env.bundle, bad)
    assert r.returncode == 1 and "invalid container ID format" in r.stderr
    assert not os.path.exists(os.path.join(env.tmp, "x"))


def test_g15_state_is_unreachable_from_the_container(env):
    cid = env.new_id()
    r = env.run(["sh", "-c", "ls /proc/1/fd; find / -name exec.fifo -o -name state.json 2>/dev/null | head"], cid=cid)
    assert r.returncode == 0
    assert "exec.fifo" not in r.stdout and "state.json" not in r.stdout


def _init_with_plan(blob):
    """Feed the C init a plan directly; returns the error record it sends."""
    import socket

    from ocirun import launch, proto

    from tests.conftest import installed_init

    launch.INIT_PATH = installed_init()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    exe = launch.init_memfd()
    plan = os.memfd_create("plan")
    os.write(plan, blob)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(plan, 3)
            os.dup2(b.fileno(), 4)
            os.execve(f"/proc/self/fd/{exe}", ["ocirun-init", "3"], {})
        finally:
            os._exit(99)
    b.close()
    os.close(plan)
    os.close(exe)
    data = a.recv(2048)
    a.close()
    _, status = os.waitpid(pid, 0)
    typ, err, step, _value = proto.MSG_HDR.unpack_from(data)
    return typ, step, data[16:].split(b"\0")[0].decode(), os.WEXITSTATUS(status)


@pytest.mark.parametrize("mangle", ["truncate", "length", "unterminated", "count", "unknown"])
def test_g13_malformed_plans_are_rejected_by_the_init(mangle):
    from ocirun import proto

    if os.geteuid() != 0:
        pytest.skip("needs root")
    w = proto.PlanWriter()
    w.str(proto.R_ROOTFS, "/nonexistent")
    w.str(proto.R_CWD, "/")
    w.str(proto.R_ARG, "true")
    blob = bytearray(w.finish())
    if mangle == "truncate":
        blob = blob[:-8]
    elif mangle == "length":
        struct.pack_into("=I", blob, 16 + 4, 1 << 30)
    elif mangle == "unterminated":
        blob[16 + 8 + len("/nonexistent")] = ord("x")
    elif mangle == "count":
        struct.pack_into("=I", blob, 12, 99)
    elif mangle == "unknown":
        struct.pack_into("=H", blob, 16, 999)
    typ, step, detail, status = _init_with_plan(bytes(blob))
    assert typ == proto.M_ERROR and proto.STEPS[step] == "plan" and status == 1, detail


def test_g2_g4_exec_path(env):
    """exec: cwd through a leaked fd never reaches the host, and what joins
    the container is the sealed memfd, never a host binary."""
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    assert env.cli("run", "-d", "-b", env.bundle, cid).returncode == 0
    try:
        for n in range(3, 9):
            r = env.cli("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", "pwd")
            if r.returncode == 0:
                assert r.stdout.startswith("/") and "(unreachable)" not in r.stdout, (n, r.stdout)
            else:
                assert "process.cwd" in r.stderr and r.returncode == 255, r.stderr
        # a detached exec parks nothing; the exec'd process runs the user's binary
        pid_file = os.path.join(env.tmp, "e.pid")
        assert env.cli("exec", "-d", "--pid-file", pid_file, cid, "sleep", "30").returncode == 0
        pid = int(open(pid_file).read())
        assert os.readlink(f"/proc/{pid}/exe") == os.path.join(env.rootfs, "bin/busybox") or \
            os.readlink(f"/proc/{pid}/exe").endswith("/bin/busybox")
    finally:
        env.cli("delete", "-f", cid)


def test_g14_symlink_exchange_race_in_a_shared_volume(env, tmp_path):
    """A concurrent writer (another container sharing the volume) keeps
    swapping a mount destination between a directory and a symlink to a
    host directory while containers start: no mount and no file ever lands
    on the host."""
    import threading

    shared = tmp_path / "shared"
    shared.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    env.cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind"]},
        {"destination": "/data/sub/deeper", "type": "tmpfs", "source": "tmpfs"},
    ]
    env.cfg["process"]["args"] = ["true"]
    env.write()
    stop = threading.Event()

    def writer():
        sub, tmp = str(shared / "sub"), str(shared / "sub.tmp")
        while not stop.is_set():
            try:
                os.symlink(str(victim), tmp)
                os.rename(tmp, sub)  # atomically a symlink to the host directory
                os.unlink(sub)
                os.makedirs(os.path.join(sub, "deeper"), exist_ok=True)  # and back to a directory
                import shutil

                shutil.rmtree(sub, ignore_errors=True)
            except OSError:
                pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        outcomes = [env.cli("run", "-b", env.bundle, env.new_id()).returncode for _ in range(15)]
    finally:
        stop.set()
        t.join(5)
    assert list(victim.iterdir()) == [], list(victim.iterdir())
    with open("/proc/self/mountinfo") as f:
        assert str(victim) not in f.read()
    assert set(outcomes) <= {0, 1}  # a lost race may fail a start, never escape
