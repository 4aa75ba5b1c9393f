"""The CLI parser follows urfave/cli v1 as runc callers use it."""

import re

import pytest

from ocirun.cli import _split_global
from ocirun.cli.args import BOOL, INT, LIST, STR, Flag, parse
from ocirun.errors import UsageError
from ocirun.tables import parse_signal

FLAGS = [Flag(("bundle", "b"), STR, ""), Flag(("force", "f"), BOOL, False), Flag("preserve-fds", INT, 0),
         Flag(("env", "e"), LIST)]


def test_single_and_double_dash_and_equals():
    v, pos = parse(["-bundle", "/b", "--force", "--preserve-fds=2", "id"], FLAGS)
    assert v["bundle"] == "/b" and v["force"] and v["preserve_fds"] == 2 and pos == ["id"]


def test_options_after_positional():
    v, pos = parse(["id", "--force"], FLAGS)
    assert v["force"] and pos == ["id"]


def test_stop_at_positional_for_exec():
    v, pos = parse(["-b", "x", "id", "sh", "--force"], FLAGS, stop_at_positional=True)
    assert pos == ["id", "sh", "--force"] and not v["force"]


def test_bool_values_and_lists():
    v, _ = parse(["--force=false", "-e", "A=1", "--env=B=2"], FLAGS)
    assert v["force"] is False and v["env"] == ["A=1", "B=2"]


@pytest.mark.parametrize("argv,msg", [(["--nope"], "flag provided but not defined: -nope"),
                                      (["--bundle"], "flag needs an argument: -bundle"),
                                      (["--preserve-fds", "x"], "invalid value")])
def test_errors(argv, msg):
    with pytest.raises(UsageError) as e:
        parse(argv, FLAGS)
    assert msg in str(e.value)


def test_global_split_last_wins():
    g, rest = _split_global(["--root", "/a", "--log-format=json", "--root=/b", "--debug", "state", "x"])
    assert g["root"] == "/b" and g["log_format"] == "json" and g["debug"] and rest == ["state", "x"]


@pytest.mark.parametrize("text,num", [("9", 9), ("KILL", 9), ("sigkill", 9), ("SIGUSR1", 10), ("term", 15),
                                      ("RTMIN+2", 36), ("SIGRTMAX", 64)])
def test_signals(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text,num", [(" 9\n", 9), ("0009", 9), ("000", 0), ("sigkılL", 9), ("SIGSIGKILL", None),
                                      ("RTMAX-30", 34), ("RTMIN+31", None), ("RTMIN+\u00b2", None), ("\u00b2", None),
                                      ("\u0663", 3), ("65", None), ("-1", None), ("", None), ("SIG", None)])
def test_signal_forms_the_core_leaves_to_python(text, num):
    """What lc_signal_number (the front-end's parser) refuses is handed off
    and decided here: blanks, longer numbers, non-ASCII case folding (as Go's
    strings.ToUpper in runc), the real-time forms; never a traceback."""
    from ocirun.errors import OcirunError

    if num is None:
        with pytest.raises(OcirunError, match=f'^unknown signal "{re.escape(text)}"$'):
            parse_signal(text)
    else:
        assert parse_signal(text) == num


def test_unknown_signal():
    with pytest.raises(Exception) as e:
        parse_signal("FOO")
    assert 'unknown signal "FOO"' in str(e.value)
