"""Typed accessors for config.json values, the one set that plan.py and
cgroups/resources.py (and the `update` flags) read them with.

Each takes the value and the field's name, returns the value (or the
absent-value default) and raises ConfigError naming the field, always with
the same words:

    <field>: must be an object | an array | a string | an integer | a boolean
    <field>: is required
    <field>[i]: must not be null
    <field>: contains a NUL byte | must be a single line | is not valid UTF-8 text
    <field>: must not be negative, got <v> | <v> is out of range [<lo>, <hi>]
    <field>: <n> entries, more than the <limit> the runtime supports
"""

from ocirun.errors import ConfigError


def obj(v, field, default=None):
    """An object; absent: {} (or `default`)."""
    if v is None:
        return {} if default is None else default
    if not isinstance(v, dict):
        raise ConfigError(f"{field}: must be an object")
    return v


def array(v, field, limit=None, what="entries"):
    """An array; absent: [].  Null entries are refused here, for every array
    (no field of the spec has a meaning for them).  `limit`: what the C init
    takes."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{field}: must be an array")
    if None in v:
        raise ConfigError(f"{field}[{v.index(None)}]: must not be null")
    if limit is not None and len(v) > limit:
        raise ConfigError(f"{field}: {len(v)} {what}, more than the {limit} the runtime supports")
    return v


def string(v, field, required=False, single_line=False):
    """A string without NUL bytes (a C string), valid UTF-8; single_line: no
    newline either (a value written to a cgroup file).  Absent: None."""
    if v is None:
        if required:
            raise ConfigError(f"{field}: is required")
        return None
    if not isinstance(v, str):
        raise ConfigError(f"{field}: must be a string")
    if "\0" in v:
        raise ConfigError(f"{field}: contains a NUL byte")
    if single_line and "\n" in v:
        raise ConfigError(f"{field}: must be a single line")
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{field}: is not valid UTF-8 text") from None
    return v


def integer(v, field, lo=None, hi=None, required=False):
    """An integer (not a boolean) in [lo, hi]; absent: None."""
    if v is None:
        if required:
            raise ConfigError(f"{field}: is required (an integer)")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{field}: must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if lo == 0 and v < 0:
            raise ConfigError(f"{field}: must not be negative, got {v}")
        raise ConfigError(f"{field}: {v} is out of range [{'' if lo is None else lo}, {'' if hi is None else hi}]")
    return v


def boolean(v, field, default=False):
    """A boolean; absent: `default`."""
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ConfigError(f"{field}: must be a boolean")
    return v
