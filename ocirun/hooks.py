"""OCI hooks that run in the runtime's namespaces: each gets the container
state on stdin, its args and env, and an optional timeout.  A failing
prestart/createRuntime hook aborts create; poststart and poststop failures
are logged, not fatal (config.md).

As with runc: a hook without `env` gets the runtime's own environment (an
empty `env: []` gets none); stdout and stderr are captured (shown when the
hook fails); nothing but stdin/stdout/stderr is inherited; the working
directory is the bundle (runc chdirs into it for create and run; engines'
shims run in it)."""

import os

from ocirun import log
from ocirun.errors import OcirunError, strerror


_SLICE = 86400  # poll() takes int milliseconds: ~24.8 days at most


def _communicate(p, data, timeout):
    """communicate() with a timeout of up to 2^31-1 s (the config's range):
    waited in slices against a deadline; the hook is killed when it ends."""
    import subprocess
    import time

    if timeout is None:
        return p.communicate(data)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return p.communicate(data, timeout=max(0, min(left, _SLICE)))
        except subprocess.TimeoutExpired:
            data = None  # already written: a retry must not send it again
            if left <= _SLICE:
                p.kill()
                p.communicate()
                raise


def _run(hook, state, phase, index):
    import subprocess

    from ocirun.jsonutil import dumps

    path = hook["path"]
    args = hook.get("args") or [path]
    if hook.get("env") is None:
        env = None  # the runtime's environment
    else:
        env = dict(e.split("=", 1) for e in hook["env"] if "=" in e)
    bundle = state.get("bundle")
    cwd = bundle if bundle and os.path.isdir(bundle) else None
    timeout = hook.get("timeout")
    from ocirun import procs

    if procs.warm():
        # a child of the `ocirun` process the caller started, as on the cold path
        try:
            rc, out, err = procs.run_captured(path, args, None if env is None else [f"{k}={v}" for k, v in env.items()],
                                              cwd, dumps(state).encode(), timeout)
        except TimeoutError:
            raise OcirunError(f"hooks.{phase}[{index}] {path}: timed out after {timeout}s") from None
        except OSError as e:
            raise OcirunError(f"hooks.{phase}[{index}] {path}: {strerror(e.errno)}") from None
        _check(rc, out, err, phase, index, path)
        return
    try:
        with subprocess.Popen(args, executable=path, stdin=subprocess.PIPE, env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, close_fds=True) as p:
            out, err = _communicate(p, dumps(state).encode(), timeout)
    except subprocess.TimeoutExpired:
        raise OcirunError(f"hooks.{phase}[{index}] {path}: timed out after {timeout}s") from None
    except OSError as e:
        raise OcirunError(f"hooks.{phase}[{index}] {path}: {strerror(e.errno)}") from None
    _check(p.returncode, out, err, phase, index, path)


def _check(returncode, out, err, phase, index, path):
    if returncode != 0:
        out = (err or out).decode(errors="replace").strip()
        raise OcirunError(f"hooks.{phase}[{index}] {path}: exit status {returncode}"
                          + (f": {out}" if out else ""))


def run_create_runtime(hooks, state):
    for phase in ("prestart", "createRuntime"):
        for i, h in enumerate(hooks.get(phase) or []):
            _run(h, state, phase, i)


def run_after(hooks, phase, state):
    """poststart and poststop: the container is already running or gone, so
    a failing hook is a warning, and the next one still runs (runc)."""
    for i, h in enumerate(hooks.get(phase) or []):
        try:
            _run(h, state, phase, i)
        except OcirunError as e:
            log.warning(str(e))
