"""Error types.  Every user-facing failure is an OcirunError whose str() is the
one line printed (and logged) for it; the CLI exits with .status.

For the Python API every error also carries `.field`, the config field it is
about (`process.cwd`, `mounts[3].destination`, `linux.resources.memory.limit`)
or None, and `.reason`, the rest of the line: the message is worded once,
"<field>: <reason>", and both are read back from it (or given as keywords)."""

# the top-level keys of config.json: a message that starts with one of them
# (or names mounts[N], linux.…, process.… further on) is about that field
_TOP_KEYS = ("ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks", "annotations", "linux")


def _split(msg):
    """(field, reason) of one error line, or (None, the line)."""
    import re

    text = msg[len("exec failed: "):] if msg.startswith("exec failed: ") else msg
    path = r"(?:%s)(?:\.[A-Za-z0-9_/-]+|\[\d+\])*" % "|".join(_TOP_KEYS)
    m = re.match(r"(%s)(?:: | |$)" % path, text)
    if m:
        return m.group(1), text[m.end():] or text
    m = re.search(r"\b(mounts\[\d+\]|(?:linux|process|root|hooks)(?:\.[A-Za-z0-9_/-]+|\[\d+\])+)", text)
    if m:
        return m.group(1), text
    return None, text


class OcirunError(Exception):
    status = 1
    _parsed = None

    def __init__(self, msg="", *, field=None, reason=None):
        if field is not None and reason is not None:
            msg = msg or f"{field}: {reason}"
            self._parsed = (field, reason)
        super().__init__(msg)

    def _parts(self):
        if self._parsed is None:
            self._parsed = _split(str(self))
        return self._parsed

    @property
    def field(self):
        """The config field the error is about (a dotted path with [i]
        indices, as in the message), or None."""
        return self._parts()[0]

    @property
    def reason(self):
        """What is wrong, without the field."""
        return self._parts()[1]


class UsageError(OcirunError):
    pass


class ConfigError(OcirunError):
    """config.json is malformed or asks for something unsupported; names the field."""


class ContainerExists(OcirunError):
    pass


class ContainerNotFound(OcirunError):
    pass


class CgroupError(OcirunError):
    """A cgroup cannot be made, written, frozen or removed."""


class StateError(OcirunError):
    """An invalid lifecycle transition."""


class InitError(OcirunError):
    """The container init failed during set-up (reported as step, errno, detail)."""

    def __init__(self, msg, errno=0):
        super().__init__(msg)
        self.errno = errno


class Timeout(OcirunError):
    """The Python API: a container or process outlived its timeout (it was
    killed; .stdout and .stderr hold what it wrote until then)."""

    def __init__(self, msg, timeout=None, stdout=None, stderr=None):
        super().__init__(msg)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


def strerror(errno):
    """The one wording of an errno in every message: glibc's text
    (csrc/core's lc_strerror, which the front-end prints too, whatever libc
    it is linked with), Go-style (the first letter lower-case, as runc prints
    them): engines match these words.  Imported here, not at the top: this
    module is imported everywhere, the extension only on an error."""
    from ocirun import _lifecycle

    s = _lifecycle.strerror(errno)
    return s[:1].lower() + s[1:]
