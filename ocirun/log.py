"""runc-compatible logging: --log FILE, --log-format text|json, --debug.

Text lines are logrus's:   time="..." level=error msg="..."
JSON lines are one object with sorted keys: {"level","msg","time"}.
On an error, when --log names a file, the bare message also goes to stderr
(containerd reads the file, conmon reads stderr)."""

import os
import sys
import time

_opts = {"path": None, "format": "text", "debug": False}
# the Python API's: every record goes to this callable (level, message)
# instead of the log file or stderr
_sink = None


def set_sink(fn):
    """Send every record to fn(level, msg) (None: back to the file or
    stderr); returns the sink it replaces.  The Python API hands them to
    the `logging` module while one of its calls runs."""
    global _sink
    old, _sink = _sink, fn
    return old


def configure(path=None, fmt="text", debug=False):
    _opts["path"] = path
    _opts["format"] = fmt
    _opts["debug"] = debug


def open_log_file():
    """runc opens --log on every call, so the file exists even when nothing
    is logged (engines read it after each call).  Returns an error text, or
    None; on error records go to stderr instead."""
    path = _opts["path"]
    if not path:
        return None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))
    except OSError as e:
        from ocirun.errors import strerror

        _opts["path"] = None
        return f"open {path}: {strerror(e.errno)}"
    return None


def _now():
    t = time.time()
    lt = time.localtime(t)
    off = lt.tm_gmtoff
    base = time.strftime("%Y-%m-%dT%H:%M:%S", lt)
    if off == 0:
        return base + "Z"
    sign = "+" if off > 0 else "-"
    off = abs(off)
    return f"{base}{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


def _quote(s):
    # logrus quotes values that need it with Go's %q
    from ocirun.jsonutil import dumps

    return dumps(s)


# an echoed value (a path, an argument, a key) is cut to this many characters,
# and a whole message to MSG_MAX once escaped: every line stays well under 1 KB
WORD_MAX = 160
MSG_MAX = 640
_CTRL = {c: f"\\x{c:02x}" for c in list(range(32)) + [127]}
_CTRL.update({9: "\\t", 10: "\\n", 13: "\\r"})


def _cut(s, n):
    head = n * 2 // 3
    return f"{s[:head]}...({len(s) - n} more)...{s[len(s) - (n - head):]}"


def fit(msg):
    """The one place error lines are kept short and on one line: control
    characters are escaped, long runs without a space (an echoed path or
    value) are cut in the middle, and what is still too long is cut in the
    middle too, so the field name in front and the cause at the end stay."""
    msg = str(msg)
    if msg.isprintable() and len(msg) <= WORD_MAX:
        return msg
    msg = msg.translate(_CTRL)
    if len(msg) > WORD_MAX:
        msg = " ".join(_cut(w, WORD_MAX) if len(w) > WORD_MAX else w for w in msg.split(" "))
    whole, keep = msg, len(msg)
    while len(msg.encode("ascii", "backslashreplace")) > MSG_MAX:
        keep = max(keep * 3 // 4, 40)
        msg = _cut(whole, keep)
    return msg


def format_line(level, msg):
    msg = fit(msg)
    if _opts["format"] == "json":
        from ocirun.jsonutil import dumps

        return dumps({"level": level, "msg": msg, "time": _now()}) + "\n"
    return f'time="{_now()}" level={level} msg={_quote(msg)}\n'


def _write(line):
    path = _opts["path"]
    fd = -1
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError:
            pass  # gone since open_log_file: stderr rather than nothing
    if fd >= 0:
        try:
            os.write(fd, line.encode())
        except OSError:
            pass
        finally:
            os.close(fd)
    else:
        try:
            os.write(2, line.encode())
        except OSError:
            pass


def log(level, msg):
    if _sink is not None:
        _sink(level, fit(msg))
        return
    if level == "debug" and not _opts["debug"]:
        return
    _write(format_line(level, msg))


def warning(msg):
    log("warning", msg)


def debug(msg):
    log("debug", msg)


def error(msg):
    """The final error of a command: one record, plus the bare text on stderr
    when the record went to a file."""
    if _sink is not None:
        _sink("error", fit(msg))
        return
    _write(format_line("error", msg))
    if _opts["path"]:
        try:
            os.write(2, (fit(msg) + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass


def stderr(msg):
    sys.stderr.write(fit(msg) + "\n")
