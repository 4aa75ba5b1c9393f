"""The C front-end (csrc/front): what engines call as `ocirun`.  It answers
state/start/kill/delete from the per-container record and hands everything
else to the Python CLI.  These tests check that both paths say the same
thing, byte for byte, and that the C path works on its own (a copy of the
front-end with no Python CLI next to it fails any hand-off)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import sys

import pytest

from tests.conftest import wait_status


def front_and_python(env):
    cmd = env.cmd
    if len(cmd) != 1 or not os.path.exists(cmd[0]):
        pytest.skip("ocirun is not installed (scripts/install.sh)")
    front = os.path.realpath(cmd[0])
    with open(front, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.skip("the installed ocirun is not the C front-end")
    py = os.path.join(os.path.dirname(os.path.dirname(front)), "libexec", "ocirun", "ocirun-py")
    if not os.path.exists(py):
        pytest.skip("no Python CLI next to the front-end")
    return front, py


@pytest.fixture
def lone_front(env, tmp_path):
    """A copy of the front-end that cannot hand off: only its own C path works."""
    front, _ = front_and_python(env)
    d = tmp_path / "lone" / "bin"
    d.mkdir(parents=True)
    shutil.copy(front, d / "ocirun")
    return str(d / "ocirun")


def call(binary, env, *args):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([binary, "--root", env.root, *args], stdout=out, stderr=err, timeout=30)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(), err.read().decode()


TIME = re.compile(r'time="[^"]*"|"time":"[^"]*"')


def same(a, b):
    """Outputs equal but for log timestamps."""
    return (a[0], a[1], TIME.sub("T", a[2])) == (b[0], b[1], TIME.sub("T", b[2]))


def test_state_is_byte_identical_for_every_status(env):
    front, py = front_and_python(env)
    env.cfg["annotations"] = {"org.example/ünïcode": 'quote " and \\ backslash', "emoji": "\U0001f433"}
    cid = env.create(["sleep", "100"])
    seen = []

    def compare():
        a, b = call(front, env, "state", cid), call(py, env, "state", cid)
        assert a == b
        assert a[0] == 0
        st = json.loads(a[1])
        seen.append(st["status"])
        return st

    st = compare()
    assert st["annotations"]["emoji"] == "\U0001f433"
    assert env.cli("start", cid).returncode == 0
    compare()
    assert env.cli("pause", cid).returncode == 0
    compare()
    assert env.cli("resume", cid).returncode == 0
    assert env.cli("kill", cid, "KILL").returncode == 0
    # compare only once it has stopped: while it dies the two calls can
    # straddle the exit and both be right
    wait_status(lambda c: json.loads(call(py, env, "state", c)[1]), cid)
    compare()
    assert seen == ["created", "running", "paused", "stopped"]
    assert compare()["pid"] == 0
    assert env.cli("delete", cid).returncode == 0


ARGV_FORMS = [
    ["state"], ["state", "-h"], ["state", "a", "b"], ["state", "bad/id"], ["state", "MISSING"],
    ["state", "--", "MISSING"], ["--log-format=xml", "state", "MISSING"], ["--log-format", "json", "state", "MISSING"],
    ["--debug", "state", "MISSING"], ["---root", "x", "state", "MISSING"], ["--bogus", "state", "MISSING"],
    ["start", "MISSING"], ["start"], ["kill", "MISSING"], ["kill", "MISSING", "TERM"], ["kill", "--all", "MISSING"],
    ["kill", "MISSING", "SIGNOPE"], ["kill", "MISSING", "0"], ["kill", "MISSING", "RTMIN+2"], ["kill", "a", "b", "c"],
    ["delete", "MISSING"], ["delete", "--force", "MISSING"], ["delete", "-f=maybe", "MISSING"],
    ["delete", "MISSING", "--force=false"], ["--version"], ["nonsense"], ["help"],
]


@pytest.mark.parametrize("argv", ARGV_FORMS, ids=lambda a: " ".join(a))
def test_cli_forms_answer_like_python(env, argv):
    """runc's grammar and errors are the same whichever side answers."""
    front, py = front_and_python(env)
    cid = env.new_id("argv")
    argv = [cid if a == "MISSING" else a for a in argv]
    a, b = call(front, env, *argv), call(py, env, *argv)
    assert same(a, b), (a, b)


CREATED_FORMS = [
    ["state", "ID"], ["--debug", "state", "ID"], ["--log-format=json", "state", "ID"], ["-log-format", "text", "state", "ID"],
    ["--systemd-cgroup", "state", "ID"], ["--rootless=true", "state", "ID"], ["--criu", "x", "state", "ID"],
    ["state", "--", "ID"], ["state", "ID", "extra"], ["state", "-h", "ID"], ["state", "ID", "-x"],
    ["--log", "LOG", "state", "ID"], ["--root=ROOT", "state", "ID"], ["kill", "ID", "0"], ["kill", "ID", "nope"],
    ["kill", "ID", "CONT"], ["kill", "ID", "sigcont"], ["kill", "ID", "18"], ["start", "ID", "extra"],
    ["delete", "ID", "--force=notabool"],
]


def test_cli_forms_on_a_created_container(env, tmp_path):
    """The forms the C path parses itself give Python's answers."""
    front, py = front_and_python(env)
    cid = env.create(["sleep", "100"])
    for i, form in enumerate(CREATED_FORMS):
        argv = [{"ID": cid, "ROOT": env.root}.get(a, a) for a in form]
        argv = [str(tmp_path / f"log{i}") if a == "LOG" else a.replace("ROOT", env.root) for a in argv]
        a, b = call(front, env, *argv), call(py, env, *argv)
        assert same(a, b), (form, a, b)
    assert env.state(cid)["status"] == "created"
    assert env.cli("delete", "--force", cid).returncode == 0


def test_c_path_runs_the_lifecycle_without_python(env, lone_front, tmp_path):
    """state, start, kill and delete need no interpreter: the lone copy (which
    cannot hand off) drives a container through its whole life."""
    out = tmp_path / "out"
    out.mkdir()
    env.cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    cid = env.create(["sh", "-c", "trap 'echo got-term > /out/term; exit 7' TERM; echo up > /out/up; "
                                  "while :; do sleep 0.05; done"])
    rc, so, se = call(lone_front, env, "state", cid)
    assert rc == 0 and json.loads(so)["status"] == "created", se
    rc, so, se = call(lone_front, env, "start", cid)
    assert rc == 0, se
    assert env.wait_file(out / "up") == "up\n"
    rc, so, se = call(lone_front, env, "state", cid)
    assert json.loads(so)["status"] == "running"
    rc, so, se = call(lone_front, env, "kill", cid)  # SIGTERM by default
    assert rc == 0, se
    wait_status(lambda c: json.loads(call(lone_front, env, "state", c)[1]), cid)
    assert (out / "term").read_text() == "got-term\n"
    rc, so, se = call(lone_front, env, "delete", cid)
    assert rc == 0, se
    assert not os.path.exists(os.path.join(env.root, cid))
    # what the C path cannot answer it hands off, and says so when it cannot
    rc, so, se = call(lone_front, env, "state", cid)
    assert rc == 1 and "cannot run the Python CLI" in se


def test_c_path_force_deletes_a_running_container(env, lone_front):
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    pid = env.state(cid)["pid"]
    rc, so, se = call(lone_front, env, "delete", "--force", cid)
    assert rc == 0, se
    try:
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] in "ZX"  # dead, not yet reaped by init
    except FileNotFoundError:
        pass
    assert not os.path.exists(os.path.join(env.root, cid))


def _poison_cgroups(env, cid, bogus):
    """Append a cgroup path that cannot be removed to both records."""
    d = os.path.join(env.root, cid)
    with open(os.path.join(d, "state.json")) as f:
        st = json.load(f)
    st["cgroup"]["paths"]["/bogus"] = bogus
    st["cgroup"]["made"].insert(0, bogus)
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump(st, f)
    with open(os.path.join(d, "fast"), "rb") as f:
        rec = f.read()
    head, sep, rest = rec.partition(b"\nmade ")
    with open(os.path.join(d, "fast"), "wb") as f:
        f.write(head + b"\ncg " + bogus.encode() + b"\nmade " + bogus.encode() + sep + rest)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_c_log_lines_match_python(env, lone_front, tmp_path, fmt):
    """An error the C path writes after the point of no return (a cgroup it
    cannot remove: delete fails, as runc's, the state is gone) is the same
    record Python writes, escaping included."""
    _, py = front_and_python(env)
    bogus = str(tmp_path / 'not a "dir" é')
    with open(bogus, "w"):
        pass
    lines, raw = [], []
    for binary in (lone_front, py):
        cid = env.create(["sleep", "100"])
        _poison_cgroups(env, cid, bogus)
        log = tmp_path / f"log-{len(lines)}"
        with tempfile.TemporaryFile() as err:
            p = subprocess.run([binary, "--root", env.root, "--log", str(log), "--log-format", fmt,
                                "delete", "--force", cid], stderr=err, timeout=30)
        assert p.returncode == 1
        assert not os.path.exists(os.path.join(env.root, cid))
        raw.append(log.read_text())
        lines.append(TIME.sub("T", raw[-1]).replace(cid, "ID"))
    assert lines[0] == lines[1]
    assert "removing cgroup" in lines[0] and "not a directory" in lines[0]
    if fmt == "json":
        rec = json.loads(raw[0].splitlines()[0])
        assert rec["level"] == "error" and bogus in rec["msg"]


def test_v1_primer_is_gone_when_create_returns(env):
    """On cgroup v1 create/run/exec fork a helper that pre-pays the cgroup
    migration (csrc/front/primer.c); it must never outlive the command, on
    success or on failure."""
    if not os.path.isdir("/sys/fs/cgroup/pids"):
        pytest.skip("not a cgroup v1 host")
    front, _ = front_and_python(env)

    def helpers():
        found = []
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and os.readlink(f"/proc/{pid}/exe") == front:
                    found.append(pid)
            except OSError:
                pass
        return found

    cid = env.create(["sleep", "100"])
    assert helpers() == []
    env.cfg["process"]["args"] = ["/no/such/program"]
    env.write()
    r = env.cli("run", "-b", env.bundle, env.new_id())
    assert r.returncode != 0 and "no/such/program" in r.stderr
    assert helpers() == []
    r = env.cli("exec", cid, "true")
    assert r.returncode == 0, r.stderr
    assert helpers() == []
    assert env.cli("delete", "--force", cid).returncode == 0


def test_c_path_deletes_a_created_container_without_force(env, lone_front):
    """As runc: a created (never started) container is deleted, its init killed."""
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    rc, so, se = call(lone_front, env, "delete", cid)
    assert rc == 0, se
    try:
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        pass
    assert not os.path.exists(os.path.join(env.root, cid))


def test_c_path_kill_of_a_paused_container(env, lone_front):
    """SIGKILL of a paused container also thaws it, so the kill lands."""
    cid = env.create(["sleep", "100"])
    assert env.cli("start", cid).returncode == 0
    assert env.cli("pause", cid).returncode == 0
    rc, so, se = call(lone_front, env, "state", cid)
    assert json.loads(so)["status"] == "paused"
    rc, so, se = call(lone_front, env, "kill", cid, "KILL")
    assert rc == 0, se
    wait_status(lambda c: json.loads(call(lone_front, env, "state", c)[1]), cid)
    assert json.loads(call(lone_front, env, "state", cid)[1])["status"] == "stopped"
    rc, so, se = call(lone_front, env, "delete", cid)
    assert rc == 0, se


def test_hooks_are_left_to_python_before_any_side_effect(env, lone_front, tmp_path):
    """A container with poststart/poststop hooks: the C path hands start and
    delete off untouched (the lone copy fails the hand-off, and the container
    is exactly as it was); through the real front-end Python runs the hooks."""
    log = tmp_path / "hooks.log"
    env.cfg["hooks"] = {
        "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo poststart >> {log}"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"echo poststop >> {log}"]}],
    }
    cid = env.create(["sleep", "100"])
    rc, so, se = call(lone_front, env, "start", cid)
    assert rc == 1 and "cannot run the Python CLI" in se
    assert env.state(cid)["status"] == "created"
    assert os.path.exists(os.path.join(env.root, cid, "exec.fifo"))
    assert env.cli("start", cid).returncode == 0
    assert env.cli("kill", cid, "KILL").returncode == 0
    env.wait_status(cid)
    rc, so, se = call(lone_front, env, "delete", cid)
    assert rc == 1 and "cannot run the Python CLI" in se
    assert env.state(cid)["status"] == "stopped"
    assert env.cli("delete", cid).returncode == 0
    assert log.read_text() == "poststart\npoststop\n"


def test_kill_signal_zero_probes_liveness(env, lone_front):
    """`kill ID 0` (engines' liveness probe) succeeds on a live init, from
    the C side alone and from Python, and sends nothing; on a stopped
    container it is runc's "container not running"."""
    front, py = front_and_python(env)
    cid = env.create(["sleep", "100"])
    pid = env.state(cid)["pid"]
    for binary in (lone_front, py):
        r = call(binary, env, "kill", cid, "0")
        assert r[0] == 0 and r[2] == "", (binary, r)
    assert env.state(cid)["status"] == "created"
    with open(f"/proc/{pid}/status") as f:
        assert "State:\tS" in f.read()  # not stopped, not killed
    assert env.cli("kill", cid, "KILL").returncode == 0
    env.wait_status(cid)
    for binary in (front, py):
        r = call(binary, env, "kill", cid, "0")
        assert r[0] == 1 and "container not running" in r[2], (binary, r)
    assert env.cli("delete", cid).returncode == 0


ZOMBIE_HELPER = r"""
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the init becomes our child, never reaped
front, py, root, bundle, cid = sys.argv[1:]
subprocess.run([front, "--root", root, "run", "-d", "-b", bundle, cid], check=True, stdin=subprocess.DEVNULL)
pid = json.loads(subprocess.run([front, "--root", root, "state", cid], capture_output=True, text=True).stdout)["pid"]
os.kill(pid, 9)
while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
    time.sleep(0.01)
out = {}
for name, binary in (("front", front), ("py", py)):
    st = subprocess.run([binary, "--root", root, "state", cid], capture_output=True, text=True)
    k = subprocess.run([binary, "--root", root, "kill", cid, "0"], capture_output=True, text=True)
    out[name] = [json.loads(st.stdout)["status"], json.loads(st.stdout)["pid"], k.returncode, "container not running" in k.stderr]
out["delete"] = subprocess.run([front, "--root", root, "delete", cid], capture_output=True, text=True).returncode
os.waitpid(pid, 0)
print(json.dumps(out))
"""


def test_state_of_an_unreaped_init_is_stopped(env):
    """An init that died but was not reaped yet (a zombie, its parent busy)
    is `stopped` with pid 0 as in runc, on both sides; delete works."""
    front, py = front_and_python(env)
    env.cfg["process"]["args"] = ["sleep", "100"]
    env.write()
    cid = env.new_id()
    r = subprocess.run([sys.executable, "-c", ZOMBIE_HELPER, front, py, env.root, env.bundle, cid],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"front": ["stopped", 0, 1, True], "py": ["stopped", 0, 1, True], "delete": 0}, out


@pytest.mark.parametrize("side", ["c", "python"])
def test_delete_removes_the_state_dir_whole_without_following_links(env, lone_front, tmp_path, side):
    """Whatever a crash or a hostile user left in <root>/<id> (a non-empty
    sub-directory, symlinks to directories and files elsewhere) goes with
    the container, on both sides, and nothing a link points to is touched
    (one rule, csrc/core/lifecycle.c:lc_remove_dir)."""
    front, py = front_and_python(env)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep").write_text("x")
    (outside / "sub" / "keep").write_text("y")
    cid = env.create(["sleep", "100"])
    d = os.path.join(env.root, cid)
    os.makedirs(os.path.join(d, "leftover", "deeper"))
    with open(os.path.join(d, "leftover", "deeper", "file"), "w") as f:
        f.write("z")
    os.symlink(outside, os.path.join(d, "link-dir"))
    os.symlink(outside / "keep", os.path.join(d, "link-file"))
    os.symlink(outside, os.path.join(d, "leftover", "link"))
    rc, so, se = call(lone_front if side == "c" else py, env, "delete", cid)
    assert rc == 0, se
    assert not os.path.lexists(d)
    assert sorted(os.listdir(outside)) == ["keep", "sub"]
    assert (outside / "keep").read_text() == "x" and (outside / "sub" / "keep").read_text() == "y"


@pytest.mark.parametrize("outcome", ["released", "dead"])
def test_start_answers_like_python(env, tmp_path, outcome):
    """Both sides release the init through csrc/core's lc_release: one
    container started by each says the same and ends in the same state; an
    init a seccomp profile stops before its execve (no syscall left to
    report with) is "already dead" on both, as runc says."""
    front, py = front_and_python(env)
    out = tmp_path / "out"
    out.mkdir()
    env.cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    if outcome == "dead":
        env.cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO"}
    ids = {}
    for side, binary in (("c", front), ("py", py)):
        cid = env.create(["sh", "-c", f"echo up > /out/{side}; exec sleep 100"])
        ids[side] = cid
        ids[side + "-answer"] = call(binary, env, "start", cid)
    try:
        a, b = ids["c-answer"], ids["py-answer"]
        assert same(a, b), (a, b)
        if outcome == "released":
            assert a == (0, "", "")
            assert env.wait_file(out / "c") == env.wait_file(out / "py") == "up\n"
            assert env.state(ids["c"])["status"] == env.state(ids["py"])["status"] == "running"
        else:
            assert a[0] == 1 and a[1] == "" and 'msg="container process is already dead"' in a[2], a
            assert env.state(ids["c"])["status"] == env.state(ids["py"])["status"] == "stopped"
            assert sorted(os.listdir(out)) == []
        # released or not, neither start may run it again
        for side in ("c", "py"):
            again = call(py, env, "start", ids[side])
            assert again[0] == 1 and again[1] == "", again
    finally:
        for side in ("c", "py"):
            assert env.cli("delete", "--force", ids[side]).returncode == 0


def test_default_root_is_one_rule_on_both_sides(env, tmp_path):
    """Without --root, both sides take the state from csrc/core's
    lc_default_root: $XDG_RUNTIME_DIR/ocirun for root of a user namespace
    (`unshare -Ur`, as rootless podman looks), /run/ocirun for root of the
    initial one, whatever XDG_RUNTIME_DIR says."""
    front, py = front_and_python(env)
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    env.root = str(xdg / "ocirun")  # where create puts it, and what the leftovers check looks at
    cid = env.create(["sleep", "100"])
    try:
        answers = {}
        for side, binary in (("c", front), ("py", py)):
            for where, pre in (("userns", ["unshare", "-Ur"]), ("init", [])):
                p = subprocess.run(pre + [binary, "state", cid], capture_output=True, text=True, timeout=30,
                                   env={"PATH": os.environ["PATH"], "XDG_RUNTIME_DIR": f"{xdg}//"})
                answers[side, where] = (p.returncode, p.stdout, TIME.sub("T", p.stderr))
        assert answers["c", "userns"] == answers["py", "userns"]
        assert answers["c", "init"] == answers["py", "init"]
        rc, out, _ = answers["py", "userns"]
        assert rc == 0 and json.loads(out)["id"] == cid and json.loads(out)["status"] == "created"
        assert answers["py", "init"][0] == 1 and 'msg="container does not exist"' in answers["py", "init"][2]
    finally:
        assert env.cli("delete", "--force", cid).returncode == 0
