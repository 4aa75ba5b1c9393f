"""Seccomp (compiled with libseccomp, loaded by the init) and hooks, as the
container and the hooks themselves observe them."""

import json
import os
import re
import socket
import struct
import subprocess
import threading

import pytest

UNISTD = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


def allow_all(rules=(), default="SCMP_ACT_ALLOW", **extra):
    return dict({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                 "syscalls": list(rules)}, **extra)


def status_field(out, name):
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def test_errno_rule_and_seccomp_mode(env):
    env.cfg["root"]["readonly"] = False
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                               "errnoRet": 13}])
    r = env.sh("grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?")
    assert status_field(r.stdout, "Seccomp") == "2", r.stdout + r.stderr
    assert "Permission denied" in r.stdout and "rc=1" in r.stdout
    assert not os.path.exists(os.path.join(env.rootfs, "tmp", "x"))


def test_kill_process_action(env):
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}])
    # busybox runs applets in-process: `sync` in a child shell
    r = env.sh("sh -c sync; echo rc=$?; echo after")
    assert "rc=159" in r.stdout and "after" in r.stdout, (r.stdout, r.stderr)  # SIGSYS
    assert r.stdout.splitlines()[0] == "rc=159"


def test_argument_conditions(env):
    # kill(pid, 0) is refused, other signals pass
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                               "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}])
    r = env.sh("kill -0 $$ 2>&1; echo rc0=$?; kill -s CONT $$; echo rccont=$?")
    assert "rc0=1" in r.stdout and "rccont=0" in r.stdout, r.stdout


def test_masked_eq_and_default_errno(env):
    suid = {"value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}
    env.cfg["linux"]["seccomp"] = allow_all(
        [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [dict(suid, index=1)]},
         {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
          "args": [dict(suid, index=2)]}])
    env.cfg["root"]["readonly"] = False
    r = env.sh("touch /tmp/f; chmod 4755 /tmp/f 2>&1; echo rc=$?; chmod 755 /tmp/f; echo rc2=$?")
    assert "rc=1" in r.stdout and "rc2=0" in r.stdout and "not implemented" in r.stdout.lower(), r.stdout


def _docker_sized_profile():
    names = re.findall(r"#define __NR_(\w+)", open(UNISTD).read())
    blocked = {"mount", "umount2", "reboot", "kexec_load", "init_module", "delete_module", "swapon", "swapoff",
               "unshare", "setns", "clone3", "personality", "clone"}
    allowed = [n for n in names if n not in blocked]
    rules = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    for v in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF):
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    rules.append({"names": ["no_such_syscall_here"], "action": "SCMP_ACT_ALLOW"})  # skipped, as runc does
    return allow_all(rules, default="SCMP_ACT_ERRNO", defaultErrnoRet=1), len(allowed)


def test_docker_sized_profile(env):
    if not os.path.exists(UNISTD):
        pytest.skip("kernel headers not installed")
    prof, n = _docker_sized_profile()
    assert n > 300
    env.cfg["linux"]["seccomp"] = prof
    r = env.sh("echo hi | cat; ls / >/dev/null && echo ls-ok; unshare -U true 2>&1; echo rc=$?")
    assert r.returncode == 0, r.stderr
    assert "hi" in r.stdout and "ls-ok" in r.stdout and "rc=1" in r.stdout


PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    errno = 0;
    long r = syscall(strtol(argv[i], NULL, 10), 0, 0, 0, 0, 0, 0);
    printf("%s=%ld\n", argv[i], r < 0 ? (long)errno : 0L);
  }
  return 0;
}
"""


def _probe(env):
    """A static program in the rootfs that prints `nr=errno` for each
    syscall number it is given (called with zero arguments)."""
    src = os.path.join(env.tmp, "probe.c")
    with open(src, "w") as f:
        f.write(PROBE_C)
    r = subprocess.run(["gcc", "-static", "-O1", "-o", os.path.join(env.rootfs, "probe"), src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("no static C toolchain: " + r.stderr[-200:])


def _numbered():
    return {n: int(nr) for n, nr in re.findall(r"#define __NR_(\w+) (\d+)", open(UNISTD).read())}


@pytest.mark.parametrize("arches", [["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], []])
def test_syscalls_newer_than_the_profile_get_enosys(env, arches):
    """docker's default shape: deny by default (EPERM), an allow-list that
    stops at clone(2)'s era.  clone3 (435) and a number no kernel has are
    newer than every name in the profile: ENOSYS, so that libcs fall back;
    mount (known, not listed) keeps the default errno."""
    if not os.path.exists(UNISTD):
        pytest.skip("kernel headers not installed")
    _probe(env)
    nrs = _numbered()
    allowed = [n for n, nr in nrs.items() if nr < nrs["clone3"] and n not in ("mount", "swapoff")]
    env.cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": arches,
                                   "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    probes = [nrs["clone3"], nrs["faccessat2"], 1000, nrs["mount"], nrs["swapoff"], nrs["getppid"]]
    r = env.run(["/probe"] + [str(n) for n in probes])
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=") for line in r.stdout.split())
    assert got == {str(nrs["clone3"]): "38", str(nrs["faccessat2"]): "38", "1000": "38",
                   str(nrs["mount"]): "1", str(nrs["swapoff"]): "1", str(nrs["getppid"]): "0"}, r.stdout


def test_enosys_bound_counts_every_named_syscall(env):
    """As in runc, the bound is the highest syscall the profile names with any
    action (a rule equal to the default action included); with an allowing
    default nothing changes (no stub)."""
    if not os.path.exists(UNISTD):
        pytest.skip("kernel headers not installed")
    _probe(env)
    nrs = _numbered()
    allowed = [n for n, nr in nrs.items() if nr < nrs["clone3"]]
    env.cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": allowed, "action": "SCMP_ACT_ALLOW"},
        {"names": ["faccessat2"], "action": "SCMP_ACT_ERRNO"}]}
    r = env.run(["/probe", str(nrs["clone3"]), str(nrs["faccessat2"]), str(nrs["faccessat2"] + 1)])
    got = dict(line.split("=") for line in r.stdout.split())
    assert got == {str(nrs["clone3"]): "1", str(nrs["faccessat2"]): "1", str(nrs["faccessat2"] + 1): "38"}, r.stdout
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}])
    r = env.run(["/probe", str(nrs["faccessat2"]), str(nrs["getppid"])])  # faccessat2(0, NULL): EFAULT
    assert r.stdout.split() == [f"{nrs['faccessat2']}=14", f"{nrs['getppid']}=13"], r.stdout


def test_log_action_reaches_the_kernel_log(env):
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["uname"], "action": "SCMP_ACT_LOG"}])
    before = subprocess.run(["dmesg"], capture_output=True, text=True)
    if before.returncode != 0:
        pytest.skip("kernel log not readable")
    r = env.sh("uname -s")
    assert r.stdout.strip() == "Linux"
    after = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    new = after[len(before.stdout):] if after.startswith(before.stdout[:1000]) else after
    if "type=1326" not in new and "syscall=63" not in new:
        pytest.skip("this kernel does not print seccomp audit records to dmesg (no audit backend)")
    assert "syscall=63" in new


def test_notify_agent(env, tmp_path):
    sock_path = str(tmp_path / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got = {}

    def agent():
        conn, _ = srv.accept()
        msg, anc, _f, _a = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        got["state"] = json.loads(msg)
        fd = struct.unpack("i", anc[0][2][:4])[0]
        import fcntl

        req = bytearray(80)
        fcntl.ioctl(fd, 0xC0502100, req, True)  # SECCOMP_IOCTL_NOTIF_RECV
        nid, pid, _flags, nr = struct.unpack_from("=QIIi", req)
        got["nr"] = nr
        resp = struct.pack("=QqiI", nid, 0, -17, 0)  # fail it with EEXIST
        fcntl.ioctl(fd, 0xC0182101, bytearray(resp), True)  # SECCOMP_IOCTL_NOTIF_SEND
        os.close(fd)
        conn.close()

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    env.cfg["root"]["readonly"] = False
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                                            listenerPath=sock_path, listenerMetadata="meta-1")
    r = env.sh("mkdir /tmp/x 2>&1; echo rc=$?")
    t.join(10)
    srv.close()
    assert "File exists" in r.stdout and "rc=1" in r.stdout, (r.stdout, r.stderr)
    assert got["state"]["fds"] == ["seccompFd"] and got["state"]["metadata"] == "meta-1"
    assert got["state"]["state"]["id"] == env.ids[-1] and got["state"]["pid"] > 0
    assert got["nr"] == 83  # mkdir on x86_64


@pytest.mark.parametrize("mutate,words", [
    (lambda s: s.__setitem__("defaultAction", "SCMP_ACT_BOGUS"), ["linux.seccomp.defaultAction", "SCMP_ACT_BOGUS"]),
    (lambda s: s["syscalls"].append({"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}),
     ["linux.seccomp.syscalls[0].args[0].op"]),
    (lambda s: s["architectures"].append("SCMP_ARCH_Z80"), ["linux.seccomp.architectures[3]"]),
    (lambda s: s.__setitem__("flags", ["SECCOMP_FILTER_FLAG_MAGIC"]), ["linux.seccomp.flags[0]"]),
    (lambda s: s["syscalls"].append({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
     ["linux.seccomp.listenerPath"]),
])
def test_bad_profiles(env, mutate, words):
    sc = allow_all()
    mutate(sc)
    env.cfg["linux"]["seccomp"] = sc
    r = env.run(["true"])
    assert r.returncode == 1
    for w in words:
        assert w in r.stderr, r.stderr


# --- hooks --------------------------------------------------------------------

def _hook(path, log, phase):
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nread -r state\necho \"{phase} $(readlink /proc/self/ns/mnt) $state\" >> {log}\n")
    os.chmod(path, 0o755)


def test_all_six_hooks_order_stdin_and_namespaces(env):
    env.cfg["root"]["readonly"] = False
    log = os.path.join(env.tmp, "hooks.log")
    hooks = {}
    for phase in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        p = os.path.join(env.tmp, f"hook-{phase}")
        _hook(p, log, phase)
        hooks[phase] = [{"path": p, "args": [p, "arg1"], "env": ["HOOK=1"], "timeout": 10}]
    # startContainer resolves inside the container, after pivot_root
    _hook(os.path.join(env.rootfs, "hook-start"), "/hooks-start.log", "startContainer")
    hooks["startContainer"] = [{"path": "/hook-start"}]
    env.cfg["hooks"] = hooks
    env.cfg["annotations"] = {"org.example": "hook stdin"}
    cid = env.create(["sh", "-c", "readlink /proc/self/ns/mnt > /ns.txt; sleep 100"])
    pid = env.state(cid)["pid"]
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    assert env.cli("start", cid).returncode == 0
    assert env.cli("kill", cid, "KILL").returncode == 0
    env.wait_status(cid)
    assert env.cli("delete", cid).returncode == 0
    lines = open(log).read().splitlines()
    phases = [line.split()[0] for line in lines]
    assert phases == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"], lines
    host_mnt = os.readlink("/proc/self/ns/mnt")
    by = {line.split()[0]: line.split(" ", 2) for line in lines}
    for phase in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by[phase][1] == host_mnt, phase
    assert by["createContainer"][1] == container_mnt  # ran inside the container's mount namespace
    for phase, want in (("prestart", "creating"), ("createRuntime", "creating"), ("createContainer", "creating"),
                        ("poststart", "running"), ("poststop", "stopped")):
        st = json.loads(by[phase][2])
        assert st["id"] == cid and st["status"] == want, (phase, st)
        assert st["annotations"] == {"org.example": "hook stdin"}, (phase, st)
    assert json.loads(by["createContainer"][2])["pid"] == pid
    start_log = open(os.path.join(env.rootfs, "hooks-start.log")).read().split(" ", 2)
    assert start_log[0] == "startContainer" and start_log[1] == container_mnt
    assert json.loads(start_log[2])["id"] == cid and json.loads(start_log[2])["status"] == "created"


def test_hooks_environment_and_working_directory(env, tmp_path):
    """As runc: a hook without `env` gets the runtime's environment (the
    host-side ones) or the container process's (in-container ones), `env: []`
    gets nothing; host-side hooks run in the bundle, createContainer in the
    rootfs; only stdin/stdout/stderr are open."""
    out = str(tmp_path / "hooks")
    os.mkdir(out)
    env.cfg["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
    script = ('#!/bin/sh\nd=$1; [ -d /out ] && d=/out\nfds=; for f in /proc/$$/fd/*; do [ -e "$f" ] && fds="$fds $f"; done\n'
              '{ pwd; env | grep -E "^(MARKER|PATH|CT)=" | sort | tr "\\n" " "; echo; echo "$fds"; } > "$d/$2" 2>&1\n')
    for base in (env.tmp, env.rootfs):
        with open(os.path.join(base, "hook.sh"), "w") as f:
            f.write(script)
        os.chmod(os.path.join(base, "hook.sh"), 0o755)
    host = os.path.join(env.tmp, "hook.sh")
    env.cfg["process"]["env"] = ["PATH=/bin:/usr/bin", "CT=1"]
    env.cfg["hooks"] = {
        "createRuntime": [{"path": host, "args": ["h", out, "createRuntime"]},
                          {"path": host, "args": ["h", out, "createRuntime-empty"], "env": []}],
        "createContainer": [{"path": host, "args": ["h", out, "createContainer"]}],
        "startContainer": [{"path": "/hook.sh", "args": ["h", "/out", "startContainer"]}],
        "poststop": [{"path": host, "args": ["h", out, "poststop"], "env": ["MARKER=set"]}],
    }
    env.cfg["process"]["cwd"] = "/tmp"
    r = env.run(["true"], env=dict(os.environ, MARKER="from-runtime"))
    assert r.returncode == 0, r.stderr

    def seen(name):
        cwd, envs, fds = open(os.path.join(out, name)).read().split("\n")[:3]
        return cwd, envs.split(), [f.rsplit("/", 1)[1] for f in fds.split()]

    # the script's own fds (its redirection; 10 is the shell's script fd) aside
    cwd, envs, fds = seen("createRuntime")
    assert cwd == env.bundle and "MARKER=from-runtime" in envs and "CT=1" not in envs, (cwd, envs)
    assert set(fds) <= {"0", "1", "2", "10"}, fds
    assert seen("createRuntime-empty")[1] == [] and seen("createRuntime-empty")[0] == env.bundle
    cwd, envs, _ = seen("createContainer")
    assert cwd == env.rootfs and envs == ["CT=1", "PATH=/bin:/usr/bin"], (cwd, envs)
    cwd, envs, _ = seen("startContainer")
    assert cwd == "/tmp" and envs == ["CT=1", "PATH=/bin:/usr/bin"], (cwd, envs)
    cwd, envs, _ = seen("poststop")
    assert cwd == env.bundle and envs == ["MARKER=set"], (cwd, envs)


def test_failing_create_runtime_hook_aborts(env):
    p = os.path.join(env.tmp, "fail")
    with open(p, "w") as f:
        f.write("#!/bin/sh\necho boom >&2\nexit 3\n")
    os.chmod(p, 0o755)
    env.cfg["hooks"] = {"createRuntime": [{"path": p}]}
    r = env.run(["true"])
    assert r.returncode == 1 and "hooks.createRuntime[0]" in r.stderr and "exit status 3" in r.stderr
    assert "boom" in r.stderr


def test_failing_create_container_hook_aborts(env):
    env.cfg["hooks"] = {"createContainer": [{"path": "/bin/false"}]}
    r = env.run(["true"])
    assert r.returncode == 1 and "hooks.createContainer[0] /bin/false" in r.stderr, r.stderr


def test_failing_start_container_hook_fails_start(env):
    env.cfg["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    cid = env.create(["sleep", "100"])
    r = env.cli("start", cid)
    assert r.returncode == 1 and "hooks.startContainer" in r.stderr and "/bin/false" in r.stderr, r.stderr
    assert env.state(cid)["status"] == "stopped"
    assert env.cli("delete", cid).returncode == 0


def test_hook_timeout(env):
    p = os.path.join(env.tmp, "slow")
    with open(p, "w") as f:
        f.write("#!/bin/sh\nsleep 30\n")
    os.chmod(p, 0o755)
    env.cfg["hooks"] = {"createContainer": [{"path": p, "timeout": 1}]}
    r = env.run(["true"])
    assert r.returncode == 1 and "timed out" in r.stderr, r.stderr


def test_hook_timeout_beyond_int_milliseconds(env):
    """536870912 s is 125 * 2^32 ms: an int of milliseconds wraps to 0 and
    the in-container hook was killed at once; a runtime hook's 2^31-1 s made
    poll() raise.  Each must get its whole (huge) timeout."""
    for p in (os.path.join(env.tmp, "short"), os.path.join(env.rootfs, "short")):
        with open(p, "w") as f:
            f.write("#!/bin/sh\nsleep 0.3\n")
        os.chmod(p, 0o755)
    host = os.path.join(env.tmp, "short")
    env.cfg["hooks"] = {"createRuntime": [{"path": host, "timeout": 2**31 - 1}],  # the runtime's: poll() overflowed
                        "createContainer": [{"path": host, "timeout": 536870912}],
                        "startContainer": [{"path": "/short", "timeout": 2**31 - 1}]}  # in the container
    r = env.run(["sh", "-c", "echo ran"])
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr


def test_failing_poststart_is_only_a_warning(env):
    env.cfg["hooks"] = {"poststart": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]}
    r = env.run(["sh", "-c", "echo ran"])
    assert r.returncode == 0 and r.stdout == "ran\n"
    assert "level=warning" in r.stderr and "hooks.poststart[0]" in r.stderr


def test_bad_hook_path(env):
    env.cfg["hooks"] = {"prestart": [{"path": "relative/hook"}]}
    r = env.run(["true"])
    assert r.returncode == 1 and "hooks.prestart[0].path: must be an absolute path" in r.stderr


def test_notify_agent_gets_exec_listener(env, tmp_path):
    """exec into a container whose profile has SCMP_ACT_NOTIFY: the exec'd
    process gets the filter and its listener goes to listenerPath with the
    container's state (running, the init's pid), as runc 1.1 does."""
    sock_path = str(tmp_path / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(2)
    got = []
    keep = []

    def agent():
        import fcntl

        for n in range(2):
            conn, _ = srv.accept()
            msg, anc, _f, _a = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            fd = struct.unpack("i", anc[0][2][:4])[0]
            entry = {"state": json.loads(msg)}
            got.append(entry)
            conn.close()
            if n == 0:
                keep.append(fd)  # the init's listener: nothing to answer
                continue
            req = bytearray(80)
            fcntl.ioctl(fd, 0xC0502100, req, True)  # SECCOMP_IOCTL_NOTIF_RECV
            nid, pid, _flags, nr = struct.unpack_from("=QIIi", req)
            entry["nr"], entry["caller"] = nr, pid
            resp = struct.pack("=QqiI", nid, 0, -17, 0)  # EEXIST
            fcntl.ioctl(fd, 0xC0182101, bytearray(resp), True)  # SECCOMP_IOCTL_NOTIF_SEND
            os.close(fd)

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    env.cfg["root"]["readonly"] = False
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                                            listenerPath=sock_path, listenerMetadata="meta-2")
    cid = env.create(["sleep", "100"])
    try:
        assert env.cli("start", cid).returncode == 0
        init_pid = env.state(cid)["pid"]
        r = env.cli("exec", cid, "sh", "-c", "echo pid=$$; mkdir /tmp/y 2>&1; echo rc=$?")
        t.join(10)
        assert "File exists" in r.stdout and "rc=1" in r.stdout, (r.stdout, r.stderr)
        assert len(got) == 2, got
        first, second = got
        assert first["state"]["pid"] == init_pid and first["state"]["state"]["status"] == "creating"
        st = second["state"]
        assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta-2"
        assert st["state"]["id"] == cid and st["state"]["status"] == "running" and st["state"]["pid"] == init_pid
        assert st["pid"] != init_pid and st["pid"] > 0
        assert second["nr"] == 83
    finally:
        for fd in keep:
            os.close(fd)
        srv.close()
        env.cli("delete", "--force", cid)


def test_start_container_hook_runs_under_the_filter(env):
    """runc 1.1 loads the container's seccomp filter before it runs the
    startContainer hooks (with noNewPrivileges too), so the hooks are
    confined by it like the process."""
    env.cfg["root"]["readonly"] = False
    assert env.cfg["process"].get("noNewPrivileges")
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                              "errnoRet": 1}])
    env.cfg["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /hookdir; echo $? > /hookrc"]}]}
    r = env.sh("cat /hookrc; ls -d /hookdir 2>/dev/null || echo no-dir")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "no-dir"], r.stdout


# A profile that denies what the init needs after loading it: the init can
# neither report its error nor exit (exit_group refused); it must still end,
# and every command must say so in one line and leave nothing behind.
DENY_ALL = {"defaultAction": "SCMP_ACT_ERRNO"}
EXECVE_ONLY = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"}]}
# what the init failed at comes from its report page (plain memory: no filter
# can refuse that write), the rest from how it ended
SIGILL_MSG = "(linux.seccomp then refused reporting it and exiting: stopped with SIGILL)"
SIGSYS_MSG = "linux.seccomp: the profile killed the container process before its execve (SIGSYS)"
EXEC_EPERM = 'unable to start container process: exec /bin/true: operation not permitted ' + SIGILL_MSG
CAPS_EPERM = 'process.capabilities: dropping from the bounding set: operation not permitted ' + SIGILL_MSG
# the cwd is entered as root before the credentials change (runc's order);
# chdir is newer than the profile's only syscall, so it gets ENOSYS (the stub)
CWD_ENOSYS = 'process.cwd /: chdir: function not implemented ' + SIGILL_MSG


def _error_lines(stderr):
    lines = stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 1024 and "level=error" in lines[0], stderr
    return lines[0]


@pytest.mark.parametrize("profile,nnp,words", [
    (DENY_ALL, True, EXEC_EPERM),        # loaded right before execve
    (DENY_ALL, False, CAPS_EPERM),       # loaded before the credentials change: create fails
    (EXECVE_ONLY, False, CWD_ENOSYS),
    ({"defaultAction": "SCMP_ACT_KILL"}, True, SIGSYS_MSG),
    ({"defaultAction": "SCMP_ACT_KILL_PROCESS"}, False, SIGSYS_MSG),
])
def test_run_with_a_profile_that_stops_the_init(env, profile, nnp, words):
    env.cfg["linux"]["seccomp"] = profile
    env.cfg["process"]["noNewPrivileges"] = nnp
    r = env.run(["true"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert words in _error_lines(r.stderr)


def test_run_with_execve_only_runs_the_program(env):
    """execve allowed and loaded last (noNewPrivileges): the program itself
    runs, and its own exit status (it faults without its syscalls) is run's."""
    env.cfg["linux"]["seccomp"] = EXECVE_ONLY
    r = env.run(["true"])
    assert r.returncode > 128 and "level=error" not in r.stderr, (r.returncode, r.stderr)


def test_create_start_with_a_deny_all_profile(env):
    """create parks the init before the filter (noNewPrivileges): start sees
    it die before its execve and says so, as runc does."""
    env.cfg["linux"]["seccomp"] = DENY_ALL
    cid = env.create(["true"])
    r = env.cli("start", cid)
    assert r.returncode == 1
    assert "container process is already dead" in _error_lines(r.stderr)
    assert env.state(cid)["status"] == "stopped"
    assert env.cli("delete", cid).returncode == 0


def test_create_with_a_deny_all_profile_without_nnp(env):
    env.cfg["linux"]["seccomp"] = DENY_ALL
    env.cfg["process"]["noNewPrivileges"] = False
    env.cfg["process"]["args"] = ["true"]
    env.write()
    r = env.cli("create", "-b", env.bundle, env.new_id())
    assert r.returncode == 1 and CAPS_EPERM in _error_lines(r.stderr)


@pytest.mark.parametrize("nnp", [True, False])
def test_exec_with_a_deny_all_profile(env, tmp_path, nnp):
    """exec gets the container's profile: its process dies before its execve
    (after the report for noNewPrivileges, before it otherwise) and exec
    fails with one line."""
    env.cfg["linux"]["seccomp"] = DENY_ALL
    cid = env.create(["true"])
    proc = tmp_path / "p.json"
    proc.write_text(json.dumps({"args": ["true"], "cwd": "/", "env": ["PATH=/bin"], "noNewPrivileges": nnp}))
    r = env.cli("exec", "-p", proc, cid)
    assert r.returncode == 255 and "exec failed: " + (EXEC_EPERM if nnp else CAPS_EPERM) in _error_lines(r.stderr)
    assert env.cli("delete", "--force", cid).returncode == 0


def test_a_profile_that_refuses_process_creation(env):
    """The init's own work (probing cwd and args[0] from a child) is done
    before the filter is loaded, even without noNewPrivileges (loaded early):
    a profile that forbids creating processes still runs a program that
    creates none, and the program is refused its own fork."""
    env.cfg["process"]["noNewPrivileges"] = False
    env.cfg["linux"]["seccomp"] = allow_all([{"names": ["clone", "clone3", "fork", "vfork"],
                                              "action": "SCMP_ACT_ERRNO"}])
    r = env.sh("echo ok; /bin/true; echo after")
    assert r.stdout == "ok\n" and "can't fork: Operation not permitted" in r.stderr, (r.stdout, r.stderr)


@pytest.mark.parametrize("nnp", [False, True])
def test_a_profile_that_refuses_getcwd(env, nnp):
    """The runtime-tools suite's linux_seccomp profile: everything allowed but
    getcwd.  Without NNP the filter is loaded before the init enters and
    verifies the working directory: the check must not need getcwd (G2 walks
    ".." to "/" instead), and the container runs in its cwd."""
    env.cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
    env.cfg["process"]["noNewPrivileges"] = nnp
    env.cfg["process"]["cwd"] = "/etc"
    r = env.sh("ls passwd; /bin/pwd || echo refused")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["passwd", "refused"], (r.stdout, r.stderr)
