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


@pytest.mark.parametrize("doc,words", [
    ("{", "Expecting property name"),
    ('{"a" 1}', "Expecting ':' delimiter"),
    ('{"a": [1, 2', "line 1"),
    ('"abc', "Unterminated string"),
    ("[" * 50000, "nested too deeply"),
    ('{"a": ["x", {"b": "\\ud800"}]}', "a[1].b: lone UTF-16 surrogate \\ud800"),
    ('{"\\udc00": 1}', "a top-level key: lone UTF-16 surrogate \\udc00"),
])
def test_errors_without_json_loaded(doc, words):
    """The C scanner's syntax errors need json.decoder; without it (the hot
    path never loads it) they used to surface as SystemError."""
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {repo!r}); from ocirun import jsonutil\n"
            f"try:\n    jsonutil.loads({doc!r})\nexcept jsonutil.JSONError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr, out.stderr[-2000:]
    assert words in out.stdout


def test_surrogate_pairs_are_fine():
    assert jsonutil.loads('["\\ud83d\\ude00"]') == ["\U0001F600"]
