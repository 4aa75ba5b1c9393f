"""The verbs' library side without root: build() returns a final plan (what
create and exec used to patch in afterwards), the one OCI state builder,
the console-socket rules and the pid file of the shared spawn path, and the
CLI importing only the verb it runs."""

import os
import subprocess
import sys

import pytest

from ocirun import proto as P
from ocirun.errors import OcirunError
from ocirun.plan import build, build_exec
from ocirun.spec.template import default_spec
from ocirun.state import oci_state
from ocirun.verbs.spawn import PidFile, check_console, joins_cgroup_at_setup
from tests.unit.test_plan import bundle, cfg, records  # noqa: F401 - bundle is a fixture

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_build_asks_for_the_setup_exchange_only_when_told(bundle):
    """No user namespace, no idmapped mount: the SETUP exchange is there for
    a v1 cgroup join alone, and build() puts it in itself."""
    plain = [t for t, _ in records(build(cfg(), bundle))]
    assert P.R_SETUP_SYNC not in plain
    plan = build(cfg(), bundle, join_cgroup=True)
    assert plan.setup_sync and [t for t, _ in records(plan)].count(P.R_SETUP_SYNC) == 1
    # a user namespace asked for it already: still one record
    c = cfg()
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert [t for t, _ in records(build(c, bundle, join_cgroup=True))].count(P.R_SETUP_SYNC) == 1


def test_build_adds_runtime_binds_after_the_configs_mounts(bundle):
    plan = build(cfg(), bundle, runtime_binds=[("/run/ocirun/x/notify", "/run/notify")])
    mounts = [r for t, r in records(plan) if t == P.R_MOUNT]
    assert b"/run/notify\0" in mounts[-1] and b"/run/ocirun/x/notify\0" in mounts[-1]
    assert not any(b"/run/notify\0" in r for r in mounts[:-1])
    assert len(mounts) == len([t for t, _ in records(build(cfg(), bundle)) if t == P.R_MOUNT]) + 1


def test_build_exec_joins_the_cgroup_through_setup():
    c = cfg()
    proc = {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    assert P.R_SETUP_SYNC not in [t for t, _ in records(build_exec(c, proc, 0))]
    assert P.R_SETUP_SYNC in [t for t, _ in records(build_exec(c, proc, 0, join_cgroup=True))]


def test_cgroup_join_mode():
    assert not joins_cgroup_at_setup(None)
    assert joins_cgroup_at_setup({"version": 1, "paths": {"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/x"}})
    assert not joins_cgroup_at_setup({"version": 2, "paths": {"/sys/fs/cgroup": "/sys/fs/cgroup/x"}})


def test_oci_state_shapes():
    st = {"id": "c1", "ociVersion": "1.0.2", "bundle": "/b", "rootfs": "/b/rootfs", "created": "T",
          "annotations": {"a": "b"}, "pid": 42, "cgroup": None}
    # runtime-spec State (hooks, seccomp agent): runc's specs.State order
    assert list(oci_state(st, "creating", 42).items()) == [
        ("ociVersion", "1.0.2"), ("id", "c1"), ("status", "creating"), ("pid", 42), ("bundle", "/b"),
        ("annotations", {"a": "b"})]
    # `state`/`list` output: runc's containerState order, owner last
    assert list(oci_state(st, "stopped", 0, owner="").keys()) == [
        "ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"]
    assert "annotations" not in oci_state(dict(st, annotations={}), "stopped", 0)


@pytest.mark.parametrize("detach,terminal,sock,err", [
    (True, True, None, "cannot allocate tty if ocirun will detach without setting console socket"),
    (True, False, "/s", "cannot use console socket if ocirun will not detach or allocate tty"),
    (False, True, "/s", "cannot use console socket if ocirun will not detach or allocate tty"),
    (False, False, "/s", "cannot use console socket if ocirun will not detach or allocate tty"),
    (True, True, "/s", None), (False, True, None, None), (True, False, None, None), (False, False, None, None),
])
def test_console_socket_rules(detach, terminal, sock, err):
    if err is None:
        check_console(detach, terminal, sock)
    else:
        with pytest.raises(OcirunError) as e:
            check_console(detach, terminal, sock)
        assert str(e.value) == err


def test_pid_file(tmp_path):
    path = str(tmp_path / "pid")
    f = PidFile(path)
    assert os.path.exists(str(tmp_path / ".pid")) and not os.path.exists(path)
    f.commit(1234)
    assert open(path).read() == "1234" and sorted(os.listdir(tmp_path)) == ["pid"]
    PidFile(str(tmp_path / "other")).abort()
    assert sorted(os.listdir(tmp_path)) == ["pid"]
    with pytest.raises(OcirunError) as e:
        PidFile(str(tmp_path / "missing" / "pid"))
    assert str(e.value) == f"--pid-file {tmp_path}/missing/pid: no such file or directory"


@pytest.mark.parametrize("argv,loaded,absent", [
    (["state", "nope"], "ocirun.verbs.state", ("ocirun.verbs.create", "ocirun.plan", "ocirun.launch")),
    (["kill", "nope"], "ocirun.verbs.kill", ("ocirun.verbs.create", "ocirun.plan", "ocirun.launch")),
    (["delete", "nope"], "ocirun.verbs.delete", ("ocirun.verbs.create", "ocirun.launch", "ocirun.verbs.exec")),
    (["create", "-b", "/nonexistent", "nope"], "ocirun.verbs.create",
     ("ocirun.verbs.exec", "ocirun.verbs.run", "ocirun.verbs.delete", "ocirun.cli.cgroupcmds")),
    (["pause", "nope"], "ocirun.verbs.freeze", ("ocirun.verbs.create", "ocirun.plan", "ocirun.launch")),
])
def test_the_cli_loads_only_the_verb_it_runs(tmp_path, argv, loaded, absent):
    import ocirun

    # the tree's package, with the compiled extensions of the installed copy (as tests/conftest.py)
    code = (f"import sys, ocirun; ocirun.__path__[:] = {list(ocirun.__path__)!r}; "
            "from ocirun.cli import main; main(sys.argv[1:]); "
            "print(' '.join(m for m in sys.modules if m.startswith('ocirun')))")
    r = subprocess.run([sys.executable, "-c", code, "--root", str(tmp_path), *argv], capture_output=True,
                       text=True, cwd=REPO, timeout=30)
    mods = r.stdout.split()
    assert loaded in mods, (r.stdout, r.stderr)
    for m in absent:
        assert m not in mods, m
