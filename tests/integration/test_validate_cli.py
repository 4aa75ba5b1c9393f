"""`ocirun validate` through the installed CLI: every seeded mistake found
with its pointer, what create refuses is what validate reports (the real
create, one mistake at a time), the exit statuses and formats, and `--plan`
against what a container of the same bundle observes."""

import json
import os
import shutil

import pytest

from tests.conftest import REPO, state_entries


def validate(env, *args):
    return env.cli("validate", "-b", env.bundle, *args, root=False)


def lines(r):
    return r.stdout.splitlines()


def seeded(cfg):
    """Ten mistakes: create refuses seven of them; one key is misspelt; two
    things this host cannot honour."""
    cfg["ociVersion"] = "1.0"                                                      # 1 error
    cfg["process"]["capabilites"] = cfg["process"].pop("capabilities")             # 2 unknown (its caps then absent)
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFLIE", "soft": 1, "hard": 1},  # 3 error
                                 {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1 << 40}]  # 4 warning
    cfg["mounts"][1]["destination"] = "/proc/kcore"                               # 5 error
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent-ocirun"})  # 6 error
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]  # 7 error: hostname
    cfg["linux"]["sysctl"] = {"kernel.panic": "1"}                                # 8 error
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}]  # 9 error
    cfg["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "none"})  # 10 warning
    return cfg


SEEDED = [
    "error /ociVersion: '1.0' is not a SemVer 2.0.0 version (hint: e.g. \"1.3.0\")",
    "error /process/rlimits/0/type: unknown rlimit 'RLIMIT_NOFLIE' (hint: did you mean RLIMIT_NOFILE?)",
    "error /mounts/1/destination: /proc/kcore cannot be mounted under /proc (hint: mount it elsewhere)",
    "error /mounts/{n}/source: /nonexistent-ocirun: no such file or directory",
    "error /hostname: unable to set hostname without a private UTS namespace (hint: add {{\"type\": \"uts\"}} to "
    "linux.namespaces)",
    "error /linux/sysctl/kernel.panic: sysctl is not in a separate kernel namespace",
    "error /linux/devices/0/type: unknown device type 'x' (hint: one of c, b, u, p)",
    "unknown /process/capabilites: unknown key, ignored (hint: did you mean capabilities?)",
    "warning /process/rlimits/1/hard: RLIMIT_NOFILE hard limit 1099511627776 is above this kernel's fs.nr_open "
    "({nr_open}): create will fail (hint: at most {nr_open})",
    "warning /mounts/{m}/type: filesystem type 'nosuchfs' is not in this kernel's /proc/filesystems "
    "(hint: load its module, or mount another type)",
]


def test_ten_seeded_mistakes_are_all_reported_with_pointers(env):
    seeded(env.cfg)
    env.write()
    r = validate(env)
    n = len(env.cfg["mounts"])
    nr_open = open("/proc/sys/fs/nr_open").read().strip()
    want = [w.format(n=n - 2, m=n - 1, nr_open=nr_open) for w in SEEDED]
    assert sorted(lines(r)) == sorted(want), r.stdout
    assert r.returncode == 1 and r.stderr == ""
    # and nothing was created for it
    assert not os.path.exists(env.root) or state_entries(env.root) == []


def test_every_error_create_raises_is_one_validate_reports(env):
    """The drift check: each of the seeded mistakes alone, given to the real
    `create`; what it prints is among what validate reports for them all."""
    env.write(seeded(json.loads(json.dumps(env.cfg))))
    reported = {line.split(" (hint: ")[0] for line in lines(validate(env)) if line.startswith("error ")}
    cases = [
        lambda c: c.__setitem__("ociVersion", "1.0"),
        lambda c: c["process"].__setitem__("rlimits", [{"type": "RLIMIT_NOFLIE", "soft": 1, "hard": 1}]),
        lambda c: c["mounts"][1].__setitem__("destination", "/proc/kcore"),
        lambda c: c["linux"].__setitem__("namespaces", [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]),
        lambda c: c["linux"].__setitem__("sysctl", {"kernel.panic": "1"}),
        lambda c: c["linux"].__setitem__("devices", [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}]),
    ]
    for f in cases:
        c = json.loads(json.dumps(env.cfg))
        f(c)
        env.write(c)
        r = env.cli("create", "-b", env.bundle, env.new_id())
        assert r.returncode == 1
        msg = r.stderr.strip().split("ocirun create failed: ", 1)[1].rstrip('"')
        field, reason = msg.split(": ", 1)
        ptr = "/" + field.replace("[", ".").replace("]", "").replace(".", "/")
        if field.startswith("linux.sysctl."):
            ptr = "/linux/sysctl/" + field[len("linux.sysctl."):]
        assert f"error {ptr}: {reason}".replace('\\"', '"') in reported, (msg, reported)


def test_a_clean_bundle_validates_silently(env):
    shutil.copy(os.path.join(REPO, "bundles", "busybox", "config.json"), os.path.join(env.bundle, "config.json"))
    r = validate(env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = validate(env, "--format", "json")
    assert (r.returncode, json.loads(r.stdout)) == (0, [])


def test_json_format_and_strict(env):
    env.cfg["process"]["capabilites"] = []  # unknown key only: create runs it
    env.write()
    r = validate(env, "--format", "json")
    assert r.returncode == 2
    assert json.loads(r.stdout) == [{"kind": "unknown", "pointer": "/process/capabilites",
                                     "reason": "unknown key, ignored", "hint": "did you mean capabilities?"}]
    assert validate(env, "--strict").returncode == 1
    seeded(env.cfg)
    env.write()
    found = json.loads(validate(env, "--format", "json").stdout)
    assert len(found) == 10 and {f["kind"] for f in found} == {"error", "unknown", "warning"}
    assert all(f["pointer"].startswith("/") and f["reason"] for f in found)
    r = validate(env, "--format", "yaml")
    assert r.returncode == 1 and "invalid format option 'yaml'" in r.stderr


def test_a_bundle_without_config_is_one_error(env):
    assert not os.path.exists(os.path.join(env.bundle, "config.json"))
    r = validate(env)
    assert (r.returncode, r.stdout) == (1, "error /: JSON specification file config.json not found\n")


CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]


def _status(text):
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_plan_matches_what_the_container_observes(env):
    from ocirun import tables as T

    c = env.cfg
    c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o27}
    c["process"]["capabilities"] = {k: list(CAPS) for k in ("bounding", "effective", "permitted", "inheritable",
                                                            "ambient")}
    c["process"]["noNewPrivileges"] = True
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                               {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}]
    c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "noexec", "ro", "size=1m"]})
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    env.write()
    r = validate(env, "--plan", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    plan = json.loads(r.stdout)["plan"]
    text = lines(validate(env, "--plan"))
    assert "user: uid 1000 gid 1000 groups [10 20] umask 0027" in text
    assert "seccomp SCMP_ACT_ERRNO: 2 syscalls: mkdir mkdirat" in text

    r = env.sh("cat /proc/self/status; echo ==; cat /proc/self/limits; echo ==; cat /proc/self/mountinfo; echo ==; "
               "mkdir /tmp/x 2>&1; hostname")
    assert r.returncode == 0, r.stderr
    status, limits, mountinfo, rest = r.stdout.split("==\n")
    st = _status(status)
    p = plan["process"]
    for key, field in (("bounding", "CapBnd"), ("effective", "CapEff"), ("permitted", "CapPrm"),
                       ("inheritable", "CapInh"), ("ambient", "CapAmb")):
        assert int(st[field], 16) == sum(1 << T.CAP_NUMBER[n] for n in p["capabilities"][key]), key
    assert st["Uid"].split() == [str(p["uid"])] * 4 and st["Gid"].split() == [str(p["gid"])] * 4
    assert st["Groups"].split() == [str(g) for g in p["additional_gids"]]
    assert st["Umask"] == p["umask"]
    assert st["NoNewPrivs"] == ("1" if p["no_new_privileges"] else "0")
    assert st["Seccomp"] == ("2" if p["seccomp"] else "0")
    assert "Operation not permitted" in rest.splitlines()[0]  # mkdir: the profile's ERRNO
    names = {"RLIMIT_NOFILE": "Max open files", "RLIMIT_NPROC": "Max processes"}
    for rl in p["rlimits"]:
        line = next(x for x in limits.splitlines() if x.startswith(names[rl["type"]]))
        assert line[len(names[rl["type"]]):].split()[:2] == [str(rl["soft"]), str(rl["hard"])]
    assert rest.splitlines()[-1] == plan["hostname"]
    # every mount of the plan is a mount point there, with its flags
    points = {}
    for line in mountinfo.splitlines():
        f = line.split()
        points[f[4]] = f[5].split(",")
    for m in plan["mounts"]:
        if m["kind"] in ("symlink", "setattr"):
            continue
        assert m["destination"] in points, m
        for fl in ("ro", "nosuid", "nodev", "noexec"):
            if fl in m["flags"]:
                assert fl in points[m["destination"]], (m, points[m["destination"]])
    assert "ro" in points["/scratch"]
    for path in plan["masked_paths"] + plan["readonly_paths"]:
        if os.path.exists(os.path.join("/", path.lstrip("/"))):  # the init skips a path that does not exist
            assert path in points, path
    for path in plan["readonly_paths"]:
        if path in points:
            assert "ro" in points[path], path
    assert plan["rootfs"]["readonly"] == ("ro" in points["/"])


def test_what_validate_says_create_will_fail_on_it_does(env):
    """The host warnings that end in "create will fail" are checked against
    the real create: the kernel's refusal of a mount option (offered to it
    by validate as the init will, with nothing mounted) and a hard rlimit
    the runtime cannot raise."""
    hard = int(open("/proc/sys/fs/nr_open").read()) + 1
    cases = [
        (lambda c: c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                       "options": ["size=1m", "bogusopt"]}),
         "warning /mounts/{n}/options: the kernel refuses option bogusopt: tmpfs: Unknown parameter 'bogusopt': "
         "create will fail",
         "option bogusopt: tmpfs: Unknown parameter 'bogusopt': invalid argument"),
        (lambda c: c["process"].__setitem__("rlimits", [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": hard}]),
         f"warning /process/rlimits/0/hard: RLIMIT_NOFILE hard limit {hard} is above this kernel's fs.nr_open "
         f"({hard - 1}): create will fail (hint: at most {hard - 1})",
         "process.rlimits[0] RLIMIT_NOFILE: setrlimit: operation not permitted"),
    ]
    base = json.loads(json.dumps(env.cfg))
    for f, finding, failure in cases:
        env.cfg = json.loads(json.dumps(base))
        f(env.cfg)
        env.write()
        r = validate(env)
        assert (r.returncode, lines(r)) == (2, [finding.format(n=len(env.cfg["mounts"]) - 1)])
        r = env.run(["true"])
        assert r.returncode == 1 and failure in r.stderr, r.stderr


def test_cgroup_v2_limits_in_a_cgroup2_namespace(env):
    """The v2 code path for real: a private mount namespace whose
    /sys/fs/cgroup is this host's cgroup2 (hugetlb only).  What create
    refuses there (a pids limit) is validate's error in create's words, and
    the plan names the writes in the container's group."""
    import shlex
    import subprocess

    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        pytest.skip("no cgroup2 hierarchy on this host")
    o = " ".join(shlex.quote(c) for c in env.cmd) + " --root " + shlex.quote(env.root)

    def v2(script):
        full = "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && O=" + shlex.quote(o) + "\n" + script
        return subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, timeout=60)

    env.cfg["linux"]["resources"] = {"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}
    env.write()
    cid = env.new_id()
    r = v2(f"$O validate -b {env.bundle}; echo rc=$?; $O create -b {env.bundle} {cid} </dev/null; echo rc=$?")
    out = r.stdout.splitlines()
    assert out == ["error /linux/resources/pids/limit: the pids cgroup controller is not available on this host",
                   "rc=1", "rc=1"], r.stdout + r.stderr
    assert "ocirun create failed: linux.resources.pids.limit: the pids cgroup controller is not available on this " \
           "host" in r.stderr
    del env.cfg["linux"]["resources"]["pids"]
    env.cfg["linux"]["cgroupsPath"] = f"/{cid}"
    env.write()
    r = v2(f"$O validate --plan -b {env.bundle}; echo rc=$?")
    assert f"cgroup v2: /sys/fs/cgroup/{cid}" in r.stdout.splitlines(), r.stdout + r.stderr
    assert (f"cgroup write /sys/fs/cgroup/{cid}/hugetlb.2MB.max = '2097152' "
            "(linux.resources.hugepageLimits[0])") in r.stdout.splitlines()
    assert r.stdout.splitlines()[-1] == "rc=0"


def _cases(test):
    return [m for m in test.pytestmark if m.name == "parametrize"][0].args[1]


def _peer_cases():
    """The bad configs other tests give create (their expectations are
    theirs): every refusal create makes before any process exists must be
    one of validate's errors, in the same words, at the field's pointer."""
    from tests.integration import test_badinput, test_errors

    return (_cases(test_badinput.test_wrong_types_and_values_name_the_field)
            + _cases(test_errors.test_config_errors_name_the_field))


@pytest.mark.parametrize("n", range(len(_peer_cases())))
def test_create_s_refusals_of_peer_tests_are_validate_errors(env, n):
    from ocirun.verbs.validate import _field_steps, pointer

    mutate, _words = _peer_cases()[n]
    env.cfg["process"]["args"] = ["true"]
    mutate(env.cfg)
    env.write()
    r = env.cli("run", "-b", env.bundle, env.new_id())
    assert r.returncode == 1, r.stderr
    msg = json.loads("[" + r.stderr.strip().split("msg=", 1)[1] + "]")[0] if "msg=" in r.stderr else r.stderr.strip()
    msg = msg.split("ocirun run failed: ", 1)[1]
    field, _, reason = msg.partition(": ")
    steps = _field_steps(env.cfg, field)
    found = json.loads(validate(env, "--format", "json").stdout)
    if steps is None:
        # refused by the init, after the config checks: validate's host checks saw it coming
        assert [f for f in found if f["kind"] == "warning"], (msg, found)
        return
    errors = [(f["pointer"], f["reason"]) for f in found if f["kind"] == "error"]
    assert (pointer(k for _c, k in steps), reason) in errors, (msg, errors)


def test_a_missing_executable_is_found_before_create(env):
    env.cfg["process"]["args"] = ["bash", "-c", "true"]
    env.write()
    r = validate(env)
    path = [e for e in env.cfg["process"]["env"] if e.startswith("PATH=")][0][5:]
    assert (r.returncode, lines(r)) == (2, [f"warning /process/args/0: no executable file 'bash' on the container's "
                                            f"PATH ({path}): create will fail"])
    r = env.cli("create", "-b", env.bundle, env.new_id())
    assert r.returncode == 1 and 'exec: \\"bash\\": executable file not found in $PATH' in r.stderr, r.stderr
    env.cfg["process"]["args"] = ["sh", "-c", "true"]
    env.write()
    assert validate(env).returncode == 0
