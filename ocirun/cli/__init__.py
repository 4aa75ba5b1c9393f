"""The `ocirun` command line: global options, then one command (runc's grammar,
see docs/cli-contract.md).  Commands import only what
they need; `state` and `kill` never load the plan builder."""

import os
import sys

from ocirun import _lifecycle
from ocirun.cli.args import BOOL, INT, LIST, STR, Flag, help_text, parse
from ocirun.errors import OcirunError, UsageError

GLOBAL_FLAGS = [
    # runc's rule (csrc/core's lc_default_root, the front-end's too): a
    # non-root user, or root in a user namespace, with XDG_RUNTIME_DIR keeps
    # state in $XDG_RUNTIME_DIR/ocirun, else /run/ocirun
    Flag("root", STR, _lifecycle.default_root(os.environ.get("XDG_RUNTIME_DIR")),
         "root directory for storage of container state"),
    Flag("log", STR, "", "set the log file to write ocirun logs to (default is '/dev/stderr')"),
    Flag("log-format", STR, "text", "set the log format ('text' (default), or 'json')"),
    Flag("debug", BOOL, False, "enable debug logging"),
    Flag("systemd-cgroup", BOOL, False, "enable systemd cgroup support"),
    Flag("rootless", STR, "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("criu", STR, "criu", "accepted for compatibility; checkpoint/restore is not supported", hidden=True),
    Flag(("help", "h"), BOOL, False, "show help"),
    Flag(("version", "v"), BOOL, False, "print the version"),
]

CREATE_FLAGS = [
    Flag(("bundle", "b"), STR, "", "path to the root of the bundle directory, defaults to the current directory"),
    Flag("console-socket", STR, "", "path to an AF_UNIX socket which will receive the pty master"),
    Flag("pidfd-socket", STR, "", "path to an AF_UNIX socket which will receive the pidfd of the process"),
    Flag("pid-file", STR, "", "specify the file to write the process id to"),
    Flag("no-pivot", BOOL, False, "do not use pivot root to jail process inside rootfs"),
    Flag("no-new-keyring", BOOL, False, "do not create a new session keyring for the container"),
    Flag("preserve-fds", INT, 0, "pass N additional file descriptors to the container"),
    Flag(("help", "h"), BOOL, False, "show help"),
]
RUN_FLAGS = CREATE_FLAGS + [
    Flag(("detach", "d"), BOOL, False, "detach from the container's process"),
    Flag("keep", BOOL, False, "do not delete the container after it exits"),
    Flag("no-subreaper", BOOL, False, "disable the use of the subreaper used to reap reparented processes"),
]
HELP = [Flag(("help", "h"), BOOL, False, "show help")]
EXEC_FLAGS = [
    Flag("console-socket", STR, "", "path to an AF_UNIX socket which will receive the pty master"),
    Flag("pidfd-socket", STR, "", "path to an AF_UNIX socket which will receive the pidfd of the process"),
    Flag("cwd", STR, "", "current working directory in the container"),
    Flag(("env", "e"), LIST, None, "set environment variables"),
    Flag(("tty", "t"), BOOL, False, "allocate a pseudo-TTY"),
    Flag(("user", "u"), STR, "", "UID (format: <uid>[:<gid>])"),
    Flag(("additional-gids", "g"), LIST, None, "additional gids"),
    Flag(("process", "p"), STR, "", "path to the process.json"),
    Flag(("detach", "d"), BOOL, False, "detach from the container's process"),
    Flag("pid-file", STR, "", "specify the file to write the process id to"),
    Flag("process-label", STR, "", "set the asm process label for the process commonly used with selinux"),
    Flag("apparmor", STR, "", "set the apparmor profile for the process"),
    Flag("no-new-privs", BOOL, False, "set the no new privileges value for the process"),
    Flag(("cap", "c"), LIST, None, "add a capability to the bounding set for the process"),
    Flag("preserve-fds", INT, 0, "pass N additional file descriptors to the container"),
    Flag("cgroup", STR, "", "run the process in an (existing) sub-cgroup(s)"),
    Flag("ignore-paused", BOOL, False, "allow exec in a paused container"),
] + HELP

COMMANDS = {
    "create": (CREATE_FLAGS, "create a container", "ocirun create [command options] <container-id>"),
    "start": (HELP, "executes the user defined process in a created container", "ocirun start <container-id>"),
    "run": (RUN_FLAGS, "create and run a container", "ocirun run [command options] <container-id>"),
    "state": (HELP, "output the state of a container", "ocirun state <container-id>"),
    "kill": ([Flag(("all", "a"), BOOL, False, "send the specified signal to all processes inside the container")]
             + HELP, "kill sends the specified signal (default: SIGTERM) to the container's init process",
             "ocirun kill [command options] <container-id> [signal]"),
    "delete": ([Flag(("force", "f"), BOOL, False, "forcibly delete the container if it is still running")] + HELP,
               "delete any resources held by the container", "ocirun delete [command options] <container-id>"),
    "list": ([Flag(("format", "f"), STR, "table", "select one of: table or json"),
              Flag(("quiet", "q"), BOOL, False, "display only container IDs")] + HELP,
             "lists containers started by ocirun with the given root", "ocirun list [command options]"),
    "exec": (EXEC_FLAGS, "execute new process inside the container",
             "ocirun exec [command options] <container-id> <command> [command options]  || -p process.json <container-id>"),
    "features": (HELP, "show the enabled features", "ocirun features"),
    "spec": ([Flag(("bundle", "b"), STR, "", "path to the root of the bundle directory"),
              Flag("rootless", BOOL, False, "generate a configuration for a rootless container")] + HELP,
             "create a new specification file", "ocirun spec [command options]"),
    "warm": (HELP, "start, see or stop the warm server of this --root (README: Warm start)",
             "ocirun warm start|status|stop"),
    "validate": ([Flag(("bundle", "b"), STR, "", "path to the root of the bundle directory"),
                  Flag("format", STR, "text", "output format: text or json"),
                  Flag("plan", BOOL, False, "also print what the container would get (the plan the init receives)"),
                  Flag("strict", BOOL, False, "treat warnings and unknown keys as errors")] + HELP,
                 "check a bundle's config.json and report every problem (exit 0 valid, 1 invalid, 2 warnings)",
                 "ocirun validate [command options]"),
}

# pause, resume, ps, events, update: their flag tables load with them
# (cli/cgroupcmds.py), off the create/run path
CGROUP_COMMANDS = ("pause", "resume", "ps", "events", "update")


def _command(cmd):
    if cmd in CGROUP_COMMANDS:
        from ocirun.cli.cgroupcmds import COMMANDS as C

        return C[cmd]
    return COMMANDS.get(cmd)


def _all_commands():
    from ocirun.cli.cgroupcmds import COMMANDS as C

    return {**COMMANDS, **C}

# these stop parsing options at the first positional: what follows the id
# belongs to the command (ps's own arguments)
STOP_AT_POSITIONAL = ("exec", "ps")

VERSION = None


def _version():
    """runc's lines (docker info and containerd parse `version` and
    `commit:`); python stands where runc has go."""
    import platform

    from ocirun import OCI_VERSION, __version__

    try:
        from ocirun._commit import COMMIT
    except ImportError:  # running from a source tree
        COMMIT = "unknown"
    lines = [f"ocirun version {__version__}", f"commit: {COMMIT}", f"spec: {OCI_VERSION}",
             f"python: {platform.python_version()}"]
    try:
        from ocirun.seccomp import libseccomp_version

        lines.append(f"libseccomp: {libseccomp_version()}")
    except ImportError:
        pass
    return "\n".join(lines) + "\n"


def _usage():
    lines = ["NAME:\n   ocirun - Open Container Initiative runtime\n", "USAGE:\n   ocirun [global options] command [command options] [arguments...]\n",
             "COMMANDS:"]
    for name, (_f, desc, _u) in _all_commands().items():
        lines.append(f"   {name:<10}{desc}")
    lines.append("\nGLOBAL OPTIONS:")
    for f in GLOBAL_FLAGS:
        if not f.hidden:
            lines.append(f"   --{f.names[0]:<18}{f.help}")
    return "\n".join(lines) + "\n"


def _split_global(argv):
    """Global options come before the command name."""
    gflags = GLOBAL_FLAGS
    table = {n: f for f in gflags for n in f.names}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-":
            break
        name = a.lstrip("-").split("=", 1)[0]
        f = table.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        i += 1
        if f.kind != BOOL and "=" not in a:
            i += 1
    g, _ = parse(argv[:i], gflags)
    return g, argv[i:]


def _command_of(argv):
    """The command an argv names (after the global options), or None."""
    try:
        _g, rest = _split_global(argv)
    except UsageError:
        return None
    return rest[0] if rest else None


def run_main():
    """Console-script entry: exit without interpreter teardown (it costs
    milliseconds per command and there is nothing left to clean up)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if isinstance(code, int) else 1)


def main(argv=None):
    from ocirun import front

    front.take()
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except Exception as e:  # before a command was chosen (its own handler is in _main)
        _stray(None, e)
        return 1
    finally:
        front.stop_primer()


def _stray(cmd, e):
    """The last resort: an exception nothing else turned into an error line
    becomes one line (and one log record) naming the command, never a
    traceback.  Whatever the command had created is already undone by its
    own `except BaseException: ...; raise` blocks on the way out."""
    from ocirun import log

    if isinstance(e, RecursionError):
        why = "input nested too deeply"
    elif isinstance(e, MemoryError):
        why = "out of memory"
    else:
        why = f"internal error: {type(e).__name__}: {e}"
    log.error(f"ocirun {cmd} failed: {why}" if cmd else f"ocirun: {why}")


def _main(argv):
    from ocirun import log

    try:
        g, rest = _split_global(argv)
    except UsageError as e:
        log.error(str(e))
        return 1
    # engines read the --log file for every failure, usage errors included
    log.configure(g["log"] or None, g["log_format"] if g["log_format"] in ("text", "json") else "text", g["debug"])
    if g["log_format"] not in ("text", "json"):
        log.error(f"invalid log-format: {g['log_format']}")
        return 1
    log.configure(g["log"] or None, g["log_format"], g["debug"])
    err = log.open_log_file()
    if err:
        log.error(err)
        return 1
    from ocirun import procs

    if procs.warm():
        log.debug(f"served by warm worker {os.getpid()} for ocirun pid {procs.caller_pid()}")
    if g["version"]:
        sys.stdout.write(_version())
        return 0
    if not rest or g["help"]:
        sys.stdout.write(_usage())
        return 0
    cmd, cargs = rest[0], rest[1:]
    if cmd == "help":
        # runc: `help <command>` is that command's help
        spec = _command(cargs[0]) if cargs else None
        if spec is not None:
            sys.stdout.write(help_text(f"ocirun {cargs[0]} - {spec[1]}", spec[2], spec[0]))
            return 0
        if cargs:
            log.error(f"No help topic for '{cargs[0]}'")
            return 3
        sys.stdout.write(_usage())
        return 0
    spec = _command(cmd)
    if spec is None:
        sys.stdout.write(f"No help topic for '{cmd}'\n")
        log.error(f"No help topic for '{cmd}'")
        return 3
    flags, desc, usage = spec
    try:
        opts, pos = parse(cargs, flags, stop_at_positional=cmd in STOP_AT_POSITIONAL)
    except UsageError as e:
        log.error(str(e))
        return 1
    if opts.get("help"):
        sys.stdout.write(help_text(f"ocirun {cmd} - {desc}", usage, flags))
        return 0
    from ocirun.cli import commands

    if cmd == "warm":
        g = dict(g, main=main, command_of=_command_of)  # the server runs each request's command with them
    try:
        return getattr(commands, "cmd_" + cmd)(g, opts, pos) or 0
    except commands.IncorrectUsage as e:
        sys.stdout.write("Incorrect Usage.\n\n" + help_text(f"ocirun {cmd} - {desc}", usage, flags))
        log.error(f'ocirun: "{cmd}" {e}')
        return 1
    except OcirunError as e:
        msg = str(e)
        if cmd in ("create", "run") and not isinstance(e, UsageError):
            msg = f"ocirun {cmd} failed: {msg}"
        elif cmd == "exec" and not msg.startswith("exec failed: "):
            msg = f"exec failed: {msg}"
            e.status = 255
        log.error(msg)
        return e.status
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # a last resort: one line naming the path and the cause, never a traceback
        from ocirun.errors import strerror

        where = f"{e.filename}: " if e.filename else ""
        msg = f"{where}{strerror(e.errno) if e.errno else e}"
        log.error(f"ocirun {cmd} failed: {msg}" if cmd in ("create", "run") else msg)
        return 1
    except Exception as e:
        _stray(cmd, e)
        return 1
