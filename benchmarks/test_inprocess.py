"""In-process parts of a container start, with pytest-benchmark:
    python3 -m pytest benchmarks/test_inprocess.py --benchmark-only
(not part of the test suite: timings are reported, never asserted)."""

import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ocirun import jsonutil  # noqa: E402
from ocirun.plan import build  # noqa: E402
from ocirun.spec.template import default_spec  # noqa: E402
from ocirun.state import Store  # noqa: E402


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    cfg = default_spec()
    cfg["process"]["terminal"] = False
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path), cfg


def test_config_to_plan(benchmark, bundle):
    path, cfg = bundle
    benchmark(lambda: build(cfg, path).blob())


def test_load_config_jsonutil(benchmark, bundle):
    path, _ = bundle
    data = open(os.path.join(path, "config.json"), "rb").read()
    benchmark(jsonutil.loads, data)


def test_load_config_stdlib_json(benchmark, bundle):
    path, _ = bundle
    data = open(os.path.join(path, "config.json"), "rb").read()
    benchmark(json.loads, data)


def test_state_write_read(benchmark, tmp_path):
    store = Store(str(tmp_path / "root"))
    store.ensure_root()
    os.mkdir(store.dir("c1"))
    st = {"id": "c1", "pid": 1234, "start_time": 99, "bundle": "/b", "rootfs": "/b/rootfs",
          "created": "2026-01-01T00:00:00Z", "ociVersion": "1.2.1", "annotations": {}, "cgroup": None, "hooks": {}}

    def cycle():
        store.write("c1", st)
        return store.read("c1")

    benchmark(cycle)
