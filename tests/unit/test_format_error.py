"""launch.format_error: the init's (step, errno, index, detail) -> the one
line the user reads.  The plan is a real one, built from a config."""

import errno

import pytest

from ocirun import proto as P
from ocirun.launch import format_error
from ocirun.plan import build
from ocirun.spec.template import default_spec


def step(name):
    return P.STEPS.index(name)


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    bundle = tmp_path_factory.mktemp("bundle")
    (bundle / "rootfs").mkdir()
    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10},
                                 {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    return build(cfg, str(bundle))


@pytest.mark.parametrize("name,err,index,detail,want", [
    ("exec_lookup", errno.ENOENT, 0, "sh",
     'unable to start container process: exec: "sh": executable file not found in $PATH'),
    ("exec_lookup", errno.ENOENT, 1, "/bin/x",
     'unable to start container process: exec: "/bin/x": stat /bin/x: no such file or directory'),
    ("exec_lookup", errno.EACCES, 1, "/bin/x", 'unable to start container process: exec: "/bin/x": permission denied'),
    ("exec", errno.ENOEXEC, 0, "/bin/x", "unable to start container process: exec /bin/x: exec format error"),
    ("mount", errno.ENOENT, 3, "/data\nsource /nope",
     'error mounting mounts[3] to rootfs at "/data": source /nope: no such file or directory'),
    ("mount", errno.EPERM, 0, "/proc", 'error mounting mounts[0] to rootfs at "/proc": operation not permitted'),
    ("rlimit", errno.EPERM, 0, "",
     "process.rlimits[0] RLIMIT_NOFILE: setrlimit: operation not permitted (raising a hard limit needs "
     "CAP_SYS_RESOURCE)"),
    ("rlimit", errno.EINVAL, 1, "", "process.rlimits[1] RLIMIT_CORE: setrlimit: invalid argument"),
    ("rlimit", errno.EINVAL, 7, "", "process.rlimits[7] rlimit 7: setrlimit: invalid argument"),
    ("oom", errno.EACCES, 0, "",
     "process.oomScoreAdj: writing /proc/self/oom_score_adj: permission denied (lowering it needs CAP_SYS_RESOURCE)"),
    ("cwd", errno.ENOTDIR, 0, "/etc/passwd", "process.cwd /etc/passwd: chdir: not a directory"),
    ("sysctl", errno.ENOENT, 0, "net/ipv4/nope", "linux.sysctl.net.ipv4.nope: writing /proc/sys/net/ipv4/nope: "
                                                 "no such file or directory"),
    ("device", errno.EEXIST, 2, "/dev/fuse", "linux.devices[2] /dev/fuse: file exists"),
    ("device", errno.EPERM, 1003, "/dev/tty\nmknod", "default device /dev/tty: mknod: operation not permitted"),
    ("mask", errno.EINVAL, 4, "/proc/kcore", "linux.maskedPaths[4] /proc/kcore: invalid argument"),
    ("readonly", errno.EINVAL, 0, "/proc/sys", "linux.readonlyPaths[0] /proc/sys: invalid argument"),
    ("setns", errno.EINVAL, 1, "/proc/1/ns/net", "linux.namespaces[1].path /proc/1/ns/net: setns: invalid argument"),
    ("hostname", errno.EPERM, 0, "box", "hostname 'box': sethostname: operation not permitted"),
    ("domainname", errno.EPERM, 0, "lan", "domainname 'lan': setdomainname: operation not permitted"),
    ("setuid", errno.EINVAL, 1000, "", "process.user.uid 1000: setresuid: invalid argument"),
    ("setgid", errno.EINVAL, 1000, "", "process.user.gid 1000: setresgid: invalid argument"),
    ("setgroups", errno.EPERM, 0, "", "process.user.additionalGids: setgroups: operation not permitted"),
    ("caps", errno.EPERM, 0, "capset", "process.capabilities: capset: operation not permitted"),
    ("hook", errno.ENOENT, (P.HOOK_START_CONTAINER << 16) | 2, "/hook",
     "hooks.startContainer[2] /hook: no such file or directory"),
    ("hook", 0, P.HOOK_CREATE_CONTAINER << 16, "/hook\nexit status 3", "hooks.createContainer[0] /hook: exit status 3"),
    ("seccomp", errno.EINVAL, 0, "", "linux.seccomp: loading the filter: invalid argument"),
    ("mempolicy", errno.EINVAL, 0, "",
     "linux.memoryPolicy: set_mempolicy: invalid argument (a node this host does not have?)"),
    ("personality", errno.EINVAL, 0, "", "linux.personality: invalid argument"),
    ("plan", errno.EINVAL, 0, "bad mount record", "internal error: the init rejected the plan: bad mount record"),
    ("pivot", errno.EINVAL, 0, "pivot_root", "pivot: pivot_root: invalid argument"),
    ("userns", 0, 0, "", "userns"),
])
def test_each_step_names_the_field(plan, name, err, index, detail, want):
    assert format_error(plan, step(name), err, index, detail) == want


def test_without_a_plan_and_unknown_steps():
    want = "process.rlimits[2] 2: setrlimit: invalid argument"
    assert format_error(None, step("rlimit"), errno.EINVAL, 2, "") == want
    assert format_error(None, 999, errno.EIO, 0, "x") == "step 999: x: input/output error"
    assert format_error(None, 0, 0, 0, "") == "step 0"


@pytest.mark.parametrize("name", [s for s in P.STEPS if s])
def test_every_step_gives_one_line(plan, name):
    """Whatever the init sends (a detail with a second line, any errno), the
    result is one line naming the cause."""
    line = format_error(plan, step(name), errno.EPERM, 0, "/some/path\nextra")
    assert "\n" not in line and line
    assert "operation not permitted" in line or name == "plan"  # plan: the init's own words
