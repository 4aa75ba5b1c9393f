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
from ocirun.errors import OcirunError


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
    try:
        p = subprocess.run(args, executable=path, input=dumps(state).encode(), env=env, cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise OcirunError(f"hooks.{phase}[{index}] {path}: timed out after {timeout}s") from None
    except OSError as e:
        raise OcirunError(f"hooks.{phase}[{index}] {path}: {os.strerror(e.errno).lower()}") from None
    if p.returncode != 0:
        out = (p.stderr or p.stdout).decode(errors="replace").strip()
        raise OcirunError(f"hooks.{phase}[{index}] {path}: exit status {p.returncode}"
                          + (f": {out}" if out else ""))


def run_create_runtime(hooks, state):
    for phase in ("prestart", "createRuntime"):
        for i, h in enumerate(hooks.get(phase) or []):
            _run(h, state, phase, i)


def run_poststart(hooks, state):
    for i, h in enumerate(hooks.get("poststart") or []):
        try:
            _run(h, state, "poststart", i)
        except OcirunError as e:
            log.warning(str(e))


def run_poststop(hooks, state):
    for i, h in enumerate(hooks.get("poststop") or []):
        try:
            _run(h, state, "poststop", i)
        except OcirunError as e:
            log.warning(str(e))
