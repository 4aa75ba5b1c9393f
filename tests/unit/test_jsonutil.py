import json

import pytest

from ocirun import jsonutil


@pytest.mark.parametrize("doc", ['{"a": [1, 2.5, true, null, "x\\u00e9"]}', "[]", '"s"', " {}\n"])
def test_loads_matches_json(doc):
    assert jsonutil.loads(doc) == json.loads(doc)


@pytest.mark.parametrize("doc", ["{", "[1,]", '{"a":1} x', "", "NaN", "\ufeff{}"])
def test_loads_rejects(doc):
    with pytest.raises(jsonutil.JSONError):
        jsonutil.loads(doc)


def test_dumps_match_json():
    obj = {"id": "x", "n": [1, 2], "a": {"k": "v"}, "e": {}, "l": []}
    assert jsonutil.dumps(obj) == json.dumps(obj, separators=(",", ":"))
    assert jsonutil.dumps_indent(obj) == json.dumps(obj, indent=2)


def test_no_re_import():
    """The whole point of jsonutil: `re` and `json` stay unloaded."""
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {repo!r}); import ocirun.jsonutil; "
            "print('re' in sys.modules, 'json' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
