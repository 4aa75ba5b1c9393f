"""Error types.  Every user-facing failure is an OcirunError whose str() is the
one line printed (and logged) for it; the CLI exits with .status."""


class OcirunError(Exception):
    status = 1


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


def strerror(errno):
    """The one wording of an errno in every message: glibc's text
    (csrc/core's lc_strerror, which the front-end prints too, whatever libc
    it is linked with), Go-style (the first letter lower-case, as runc prints
    them): engines match these words.  Imported here, not at the top: this
    module is imported everywhere, the extension only on an error."""
    from ocirun import _lifecycle

    s = _lifecycle.strerror(errno)
    return s[:1].lower() + s[1:]
