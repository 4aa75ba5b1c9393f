"""One function per command: parse positionals, call its verb (ocirun/verbs),
print what it returns."""

import os
import sys

from ocirun.errors import OcirunError


class IncorrectUsage(Exception):
    pass


def _one_id(pos, n=1, maximum=None):
    maximum = n if maximum is None else maximum
    if not (n <= len(pos) <= maximum):
        if n == maximum:
            raise IncorrectUsage(f"requires exactly {n} argument(s)")
        raise IncorrectUsage(f"requires a minimum of {n} and a maximum of {maximum} argument(s)")
    return pos[0]


def _store(g):
    from ocirun.state import Store

    return Store(os.path.abspath(g["root"]))


def rootless(g):
    """--rootless: 'auto' means running as a user other than root, or as
    root of a user namespace (runc's rule on cgroup v1)."""
    v = g.get("rootless", "auto")
    if v == "true":
        return True
    if v == "false":
        return False
    from ocirun import _lifecycle

    # runc's userns.RunningInUserNS(): anything but the initial identity map
    # (rootless podman, rootlesskit, `unshare -U`)
    return os.geteuid() != 0 or _lifecycle.in_user_namespace()


def _create_opts(opts, detach, g=None):
    from ocirun.verbs.create import CreateOptions

    pid_file = os.path.abspath(opts["pid_file"]) if opts.get("pid_file") else None
    if opts["preserve_fds"] < 0:
        raise OcirunError("--preserve-fds must not be negative")
    return CreateOptions(bundle=opts["bundle"] or ".", console_socket=opts["console_socket"] or None,
                         pid_file=pid_file, no_pivot=opts["no_pivot"], no_new_keyring=opts["no_new_keyring"],
                         preserve_fds=opts["preserve_fds"], detach=detach,
                         pidfd_socket=opts["pidfd_socket"] or None, rootless=rootless(g or {}),
                         systemd_cgroup=bool((g or {}).get("systemd_cgroup")))


def cmd_create(g, opts, pos):
    cid = _one_id(pos)
    from ocirun.verbs.create import create

    create(_store(g), cid, _create_opts(opts, True, g))


def cmd_run(g, opts, pos):
    cid = _one_id(pos)
    from ocirun.verbs.run import run

    return run(_store(g), cid, _create_opts(opts, opts["detach"], g), keep=opts["keep"],
               subreaper=not opts["no_subreaper"])


def cmd_start(g, opts, pos):
    from ocirun.verbs.start import start

    start(_store(g), _one_id(pos))


def cmd_state(g, opts, pos):
    from ocirun.jsonutil import dumps_indent
    from ocirun.verbs.state import state

    st = state(_store(g), _one_id(pos))
    sys.stdout.write(dumps_indent(st))
    sys.stdout.flush()


def cmd_kill(g, opts, pos):
    cid = _one_id(pos, 1, 2)
    from ocirun.tables import parse_signal
    from ocirun.verbs.kill import kill

    sig = parse_signal(pos[1]) if len(pos) > 1 else 15
    kill(_store(g), cid, sig, opts["all"])


def cmd_delete(g, opts, pos):
    from ocirun.verbs.delete import delete

    delete(_store(g), _one_id(pos), opts["force"])


def cmd_list(g, opts, pos):
    from ocirun.verbs.list import list_states

    if opts["format"] not in ("table", "json"):
        raise OcirunError(f"invalid format option {opts['format']!r}")
    from ocirun import log

    states = list_states(_store(g), on_error=log.stderr)
    if opts["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return
    if opts["format"] == "json":
        from ocirun.jsonutil import dumps

        sys.stdout.write((dumps(states) if states else "null") + "\n")
        return
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in states:
        rows.append((s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        sys.stdout.write("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")


def cmd_spec(g, opts, pos):
    if pos:
        raise IncorrectUsage("requires exactly 0 argument(s)")
    from ocirun.verbs.spec import spec

    spec(opts["bundle"] or ".", opts["rootless"])


def cmd_exec(g, opts, pos):
    from ocirun.verbs import exec as E

    if not pos:
        raise IncorrectUsage("requires a minimum of 1 argument(s)")
    cid = pos[0]
    store = _store(g)
    if opts["process"]:
        proc = E.load_process_file(opts["process"])
    else:
        if len(pos) < 2:
            raise IncorrectUsage("requires a minimum of 2 argument(s)")
        proc = E.process_from_config(store, cid, opts, pos[1:])
    if opts["preserve_fds"] < 0:
        raise OcirunError("--preserve-fds must not be negative")
    pid_file = os.path.abspath(opts["pid_file"]) if opts["pid_file"] else None
    return E.exec_process(store, cid, proc, detach=opts["detach"], pid_file=pid_file,
                          console_socket=opts["console_socket"] or None, preserve_fds=opts["preserve_fds"],
                          cgroup_spec=opts["cgroup"] or None, ignore_paused=opts["ignore_paused"],
                          pidfd_socket=opts["pidfd_socket"] or None)


def cmd_features(g, opts, pos):
    if pos:
        raise IncorrectUsage("requires exactly 0 argument(s)")
    from ocirun.verbs.features import features
    from ocirun.jsonutil import dumps_indent

    sys.stdout.write(dumps_indent(features(), 4) + "\n")


# --- commands that work through the cgroup (flags in ocirun/cli/cgroupcmds.py) --

def cmd_pause(g, opts, pos):
    from ocirun.verbs.freeze import pause

    pause(_store(g), _one_id(pos))


def cmd_resume(g, opts, pos):
    from ocirun.verbs.freeze import resume

    resume(_store(g), _one_id(pos))


def cmd_update(g, opts, pos):
    from ocirun.cli.cgroupcmds import resources_from_flags
    from ocirun.verbs.update import update

    cid = _one_id(pos)
    update(_store(g), cid, resources_from_flags(opts))


def cmd_ps(g, opts, pos):
    from ocirun.cli import cgroupcmds

    if not pos:
        raise IncorrectUsage("requires a minimum of 1 argument(s)")
    cgroupcmds.ps(g, opts, pos[0], pos[1:])


def cmd_events(g, opts, pos):
    from ocirun.cli import cgroupcmds

    cgroupcmds.events(g, opts, _one_id(pos))


def _preload_warm():
    """What create, run and exec import, imported once in the warm server
    (each request would otherwise import the lazy ones again)."""
    import copy  # noqa: F401
    import errno  # noqa: F401
    import json  # noqa: F401

    import ocirun.cgroups  # noqa: F401
    import ocirun.cgroups.devices  # noqa: F401
    import ocirun.cgroups.resources  # noqa: F401
    import ocirun.jsonutil  # noqa: F401
    import ocirun.verbs.spawn  # noqa: F401
    import ocirun.foreground  # noqa: F401
    import ocirun.hooks  # noqa: F401
    import ocirun.plan  # noqa: F401
    import ocirun.spec.load  # noqa: F401
    import ocirun.tty  # noqa: F401
    import ocirun.verbs.create  # noqa: F401
    import ocirun.verbs.delete  # noqa: F401
    import ocirun.verbs.exec  # noqa: F401
    import ocirun.verbs.run  # noqa: F401
    import ocirun.verbs.start  # noqa: F401


def _warm_start(warm, root):
    """Start the server now (the front-end otherwise starts it on the first
    cold create/run/exec) and wait until it answers."""
    import subprocess
    import time

    found, text = warm.control(root, "status")
    if not found:
        launcher = os.path.realpath(sys.argv[0])
        if os.path.basename(launcher) != "ocirun-py" or warm.build_id() is None:
            raise OcirunError("warm start: only an installed ocirun has a warm path (scripts/install.sh)")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        env.update({k: v for k, v in os.environ.items() if k in ("OCIRUN_WARM_IDLE", "OCIRUN_WARM_WORKERS")})
        subprocess.Popen([launcher, "--root", root, "warm", "serve"], env=env, cwd="/", stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not found and time.monotonic() < deadline:
            time.sleep(0.02)
            found, text = warm.control(root, "status")
        if not found:
            raise OcirunError(f"warm start: {text}")
    sys.stdout.write(text + "\n")
    return 0


def cmd_warm(g, opts, pos):
    """`warm start|status|stop` for people; `warm serve` is how the
    front-end starts the server (csrc/front/warm.c)."""
    from ocirun import warm

    op = _one_id(pos)
    root = os.path.abspath(g["root"])
    if op == "serve":
        build = warm.build_id()
        if build is None:
            raise OcirunError("warm serve: this ocirun has no build id (installed from a source tree?)")
        _on, idle, workers = warm.settings()
        return warm.serve(root, build, idle, workers, g["main"], _preload_warm, g["command_of"])
    if op == "start":
        return _warm_start(warm, root)
    if op not in ("status", "stop"):
        raise IncorrectUsage(f"unknown warm command {op!r} (start, status or stop)")
    found, text = warm.control(root, op)
    if not found:
        raise OcirunError(text)
    sys.stdout.write(text + "\n")
    return 0


def cmd_validate(g, opts, pos):
    if pos:
        raise IncorrectUsage("requires exactly 0 argument(s)")
    if opts["format"] not in ("text", "json"):
        raise OcirunError(f"invalid format option {opts['format']!r}")
    from ocirun.verbs import validate as V

    report = V.validate(opts["bundle"] or ".", rootless=rootless(g), systemd_cgroup=bool(g.get("systemd_cgroup")))
    plan = V.describe(report) if opts["plan"] and report.plan is not None else None
    if opts["format"] == "json":
        from ocirun.jsonutil import dumps_indent

        found = [f.as_dict() for f in report.findings]
        sys.stdout.write(dumps_indent({"findings": found, "plan": plan} if opts["plan"] else found) + "\n")
    else:
        lines = [f.text() for f in report.findings] + (V.plan_text(plan) if plan else [])
        sys.stdout.write("".join(line + "\n" for line in lines))
    return report.status(opts["strict"])
