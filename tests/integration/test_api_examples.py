"""The Python API's documented examples (docs/examples/*.py, shown whole in
docs/api.md) run as a user runs them: with the installed ocirun, as root,
on the busybox rootfs, their containers under this test's state root (the
env fixture checks nothing is left)."""

import glob
import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO, installed_init

EXAMPLES = os.path.join(REPO, "docs", "examples")
# the API's default container ids (ocirun.Container without id=)
DEFAULT_ID = re.compile(r"ocirun-[0-9a-f]{12}$")


def test_api_md_shows_the_example_files_as_they_are():
    """Each `<!-- file: docs/examples/X -->` in docs/api.md is followed by
    that file, whole and unchanged: the doc cannot drift from what runs."""
    with open(os.path.join(REPO, "docs", "api.md")) as f:
        doc = f.read()
    shown = re.findall(r"<!-- file: (docs/examples/[\w.]+) -->\n```python\n(.*?)```\n", doc, re.S)
    assert sorted(p for p, _ in shown) == sorted(os.path.relpath(p, REPO)
                                                 for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
    for path, text in shown:
        with open(os.path.join(REPO, path)) as f:
            assert text == f.read(), f"docs/api.md shows an outdated {path}"


def _api_cgroups():
    found = set()
    for base, dirs, _files in os.walk("/sys/fs/cgroup"):
        found |= {os.path.join(base, d) for d in dirs if DEFAULT_ID.match(d)}
        if base.count("/") > 5:
            dirs[:] = []
    return found


def _example(env, args, environ=None, **kw):
    installed_init()  # skips when ocirun is not installed for this interpreter
    before = _api_cgroups()
    tmp = os.path.join(env.tmp, "tmpdir")  # where the API writes its temporary bundles
    os.mkdir(tmp)
    # -I: the installed ocirun, never this tree's (no PYTHONPATH, no cwd)
    r = subprocess.run([sys.executable, "-I"] + args, capture_output=True, text=True, timeout=300,
                       env=dict(environ or os.environ, TMPDIR=tmp), **kw)
    assert _api_cgroups() - before == set(), "cgroups left behind"
    assert os.listdir(tmp) == [], "temporary bundles left behind"
    return r


def test_sandbox_example(env):
    r = _example(env, [os.path.join(EXAMPLES, "sandbox.py"), env.rootfs, env.root])
    assert r.returncode == 0, r.stderr
    got = {d.pop("sample"): d for d in map(json.loads, r.stdout.splitlines())}
    assert got["hello"] == {"exit_code": 0, "stdout": "hello from ocirun\n", "stderr": ""}
    assert got["write_root"] == {"exit_code": 1, "stdout": "",
                                 "stderr": "sh: can't create /etc/owned: Read-only file system\n"}
    assert got["network"]["stdout"] == "lo\nno network\n"
    assert "Network is unreachable" in got["network"]["stderr"]
    # the pids limit stopped the fork bomb; the memory limit killed the hog
    assert got["fork_bomb"]["exit_code"] != 0 and "all 40 started" not in got["fork_bomb"]["stdout"]
    assert "can't fork: Resource temporarily unavailable" in got["fork_bomb"]["stderr"]
    assert got["memory_hog"]["exit_code"] == 128 + 9
    assert got["forever"] == {"timed_out": True, "stdout": "spinning\n"}


def test_service_fixture_example(env, tmp_path):
    environ = dict(os.environ, OCIRUN_EXAMPLE_ROOTFS=env.rootfs, OCIRUN_EXAMPLE_ROOT=env.root)
    r = _example(env, ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pt'}",
                       "test_service.py"], environ, cwd=EXAMPLES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\b3 passed\b", r.stdout), r.stdout
