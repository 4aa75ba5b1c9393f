"""The command line of the commands that work through the container's
cgroup: pause, resume, update, ps, events — their flags, parsing them
(update's sizes, events' interval) and printing; the verbs themselves are in
ocirun/verbs.  Flags and wording are runc's (engines call them: the
containerd shim for pause/resume/update/ps, podman for all of them)."""

import os
import sys

from ocirun.errors import OcirunError
from ocirun.cli.args import BOOL, STR, Flag

HELP = [Flag(("help", "h"), BOOL, False, "show help")]

PS_FLAGS = [Flag(("format", "f"), STR, "table", "select one of: table or json (default: \"table\")")] + HELP
EVENTS_FLAGS = [Flag("interval", STR, "5s", "set the stats collection interval (default: 5s)"),
                Flag("stats", BOOL, False, "display the container's stats then exit")] + HELP
UPDATE_FLAGS = [
    Flag(("resources", "r"), STR, "", "path to the file containing the resources to update or '-' to read from "
                                      "the standard input"),
    Flag("blkio-weight", STR, "", "Specifies per cgroup weight, range is from 10 to 1000"),
    Flag("cpu-period", STR, "", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-quota", STR, "", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpu-burst", STR, "", "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally "
                               "for burst a given period"),
    Flag("cpu-share", STR, "", "CPU shares (relative weight vs. other containers)"),
    Flag("cpu-rt-period", STR, "", "CPU realtime period to be used for hardcapping (in usecs). 0 to use system "
                                   "default"),
    Flag("cpu-rt-runtime", STR, "", "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpuset-cpus", STR, "", "CPU(s) to use"),
    Flag("cpuset-mems", STR, "", "Memory node(s) to use"),
    Flag("cpu-idle", STR, "", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    Flag("kernel-memory", STR, "", "(obsoleted; do not use)", hidden=True),
    Flag("kernel-memory-tcp", STR, "", "(obsoleted; do not use)", hidden=True),
    Flag("memory", STR, "", "Memory limit (in bytes)"),
    Flag("memory-reservation", STR, "", "Memory reservation or soft_limit (in bytes)"),
    Flag("memory-swap", STR, "", "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    Flag("pids-limit", STR, "", "Maximum number of pids allowed in the container"),
    Flag("l3-cache-schema", STR, "", "The string of Intel RDT/CAT L3 cache schema"),
    Flag("mem-bw-schema", STR, "", "The string of Intel RDT/MBA memory bandwidth schema"),
] + HELP

COMMANDS = {
    "pause": (HELP, "pause suspends all processes inside the container", "ocirun pause <container-id>"),
    "resume": (HELP, "resumes all processes that have been previously paused", "ocirun resume <container-id>"),
    "ps": (PS_FLAGS, "ps displays the processes running inside a container",
           "ocirun ps [command options] <container-id> [ps options]"),
    "events": (EVENTS_FLAGS, "display container events such as OOM notifications, cpu, memory, and IO usage "
                             "statistics", "ocirun events [command options] <container-id>"),
    "update": (UPDATE_FLAGS, "update container resource constraints",
               "ocirun update [command options] <container-id>"),
}


def _store(g):
    from ocirun.state import Store

    return Store(os.path.abspath(g["root"]))


# --- update ---------------------------------------------------------------------------

def ram_in_bytes(s):
    """docker/go-units RAMInBytes: '100M', '1g', '512KiB', '1.5GB' (binary)."""
    t = s.strip()
    num = t.rstrip("bBiI")
    unit = ""
    if num and num[-1] in "kKmMgGtTpP":
        unit, num = num[-1].lower(), num[:-1]
    suffix = t[len(num) + len(unit):]
    if suffix.lower() not in ("", "b", "ib", "i"):
        raise ValueError(s)
    num = num.strip()
    if not num or not num.replace(".", "", 1).isdigit():
        raise ValueError(s)
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[unit]
    return int(float(num) * mult) if "." in num else int(num) * mult


def _flags_to_resources(opts):
    res = {}

    def uint(name):
        v = opts[name.replace("-", "_")]
        if v == "":
            return None
        if not v.isdigit():
            raise OcirunError(f"invalid value for {name}: strconv.ParseUint: parsing {v!r}: invalid syntax")
        return int(v)

    def sint(name):
        v = opts[name.replace("-", "_")]
        if v == "":
            return None
        try:
            return int(v, 10)
        except ValueError:
            raise OcirunError(f"invalid value for {name}: strconv.ParseInt: parsing {v!r}: invalid syntax") from None

    def mem(name):
        v = opts[name.replace("-", "_")]
        if v == "":
            return None
        if v == "-1":
            return -1
        try:
            return ram_in_bytes(v)
        except ValueError:
            raise OcirunError(f"invalid value for {name}: invalid size: {v!r}") from None

    def put(section, key, value):
        if value is not None:
            res.setdefault(section, {})[key] = value

    put("blockIO", "weight", uint("blkio-weight"))
    put("cpu", "period", uint("cpu-period"))
    put("cpu", "quota", sint("cpu-quota"))
    put("cpu", "burst", uint("cpu-burst"))
    put("cpu", "shares", uint("cpu-share"))
    put("cpu", "realtimePeriod", uint("cpu-rt-period"))
    put("cpu", "realtimeRuntime", sint("cpu-rt-runtime"))
    put("cpu", "idle", sint("cpu-idle"))
    if opts["cpuset_cpus"]:
        put("cpu", "cpus", opts["cpuset_cpus"])
    if opts["cpuset_mems"]:
        put("cpu", "mems", opts["cpuset_mems"])
    put("memory", "limit", mem("memory"))
    put("memory", "reservation", mem("memory-reservation"))
    put("memory", "swap", mem("memory-swap"))
    pl = sint("pids-limit")
    if pl is not None:
        res["pids"] = {"limit": pl}
    for k in ("kernel_memory", "kernel_memory_tcp"):
        if opts[k]:
            from ocirun import log

            log.warning(f"--{k.replace('_', '-')} is obsolete and ignored")
    return res


def _read_resources(src):
    from ocirun.jsonutil import JSONError, loads

    try:
        if src == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(src, "rb") as f:
                data = f.read()
    except OSError as e:
        from ocirun.errors import strerror

        raise OcirunError(f"open {src}: {strerror(e.errno)}") from None
    try:
        res = loads(data)
    except JSONError as e:
        raise OcirunError(f"--resources: invalid JSON: {e}") from None
    if not isinstance(res, dict):
        raise OcirunError("--resources: must be a JSON object (runtime-spec LinuxResources)")
    return res


def resources_from_flags(opts):
    """update's LinuxResources: the --resources file (or stdin), else the
    flags."""
    if opts["l3_cache_schema"] or opts["mem_bw_schema"]:
        raise OcirunError("intel RDT is not supported by ocirun")
    return _read_resources(opts["resources"]) if opts["resources"] else _flags_to_resources(opts)


# --- ps -----------------------------------------------------------------------------

def ps(g, opts, cid, ps_args):
    from ocirun.state import validate_id

    validate_id(cid)
    fmt = opts["format"]
    if fmt not in ("table", "json"):
        raise OcirunError(f"invalid format option {fmt!r}")
    from ocirun.verbs import ps as P

    pids = P.pids(_store(g), cid)
    if fmt == "json":
        from ocirun.jsonutil import dumps

        sys.stdout.write((dumps(pids) if pids else "null") + "\n")
        return
    sys.stdout.write("\n".join(P.ps_lines(pids, ps_args)) + "\n")


# --- events ---------------------------------------------------------------------------

def parse_duration(s):
    """Go's time.ParseDuration, in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    t = s
    sign = 1
    if t[:1] in "+-" and t:
        sign, t = (-1 if t[0] == "-" else 1), t[1:]
    if t == "0":
        return 0.0
    if not t:
        raise ValueError(s)
    total = 0.0
    while t:
        i = 0
        while i < len(t) and (t[i].isdigit() or t[i] == "."):
            i += 1
        num, t = t[:i], t[i:]
        if not num or num == "." or num.count(".") > 1:
            raise ValueError(s)
        j = 0
        while j < len(t) and not (t[j].isdigit() or t[j] == "."):
            j += 1
        unit, t = t[:j], t[j:]
        if unit not in units:
            raise ValueError(s)
        total += float(num) * units[unit]
    return sign * total


def _emit(obj):
    from ocirun.jsonutil import dumps

    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()


def events(g, opts, cid):
    from ocirun.state import validate_id

    validate_id(cid)
    try:
        interval = parse_duration(opts["interval"])
    except ValueError:
        raise OcirunError(f'invalid value "{opts["interval"]}" for flag -interval: parse error') from None
    if interval <= 0:
        raise OcirunError("duration interval must be greater than 0")
    from ocirun.verbs import events as E

    if opts["stats"]:
        _emit(E.stats(_store(g), cid))
        return
    gen = E.events(_store(g), cid, interval)
    try:
        for ev in gen:
            _emit(ev)
    except BrokenPipeError:
        return
    finally:
        gen.close()
