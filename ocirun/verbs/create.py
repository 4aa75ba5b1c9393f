"""`create`: build the container and leave its init blocked before user
code (runtime-spec runtime.md "create")."""

import os
import time

from ocirun import log
from ocirun.errors import OcirunError
from ocirun.state import FIFO, oci_state, pid_start_time, validate_id


class CreateOptions:
    def __init__(self, bundle=".", console_socket=None, pid_file=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, detach=True, pidfd_socket=None, rootless=False,
                 systemd_cgroup=False):
        self.systemd_cgroup = systemd_cgroup  # --systemd-cgroup: which cgroup driver
        self.pidfd_socket = pidfd_socket
        self.rootless = rootless
        self.bundle = bundle
        self.console_socket = console_socket
        self.pid_file = pid_file
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.detach = detach


def _rfc3339_now():
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def _refuse_rootless_limits(res):
    """A rootless container has no cgroup: device rules are moot (it cannot
    create device nodes), any other limit cannot be honoured."""
    for key, v in (res or {}).items():
        if key != "devices" and v not in (None, {}, []):
            raise OcirunError(f"linux.resources.{key}: cgroup limits need root (a rootless container has no cgroup "
                              "on this host: cgroup v1, or no cgroup2 subtree delegated to the user)")


def create(store, cid, opts, *, keep_sync=False):
    """Returns (state dict, Spawner); with keep_sync the Spawner's sync socket
    stays open (run learns there whether the final execve succeeded) and,
    without a console socket, it holds the terminal's master to relay."""
    from ocirun import cgroups
    from ocirun.plan import build
    from ocirun.spec.load import load_config
    from ocirun.verbs.spawn import Spawner, check_console, harden_fds, joins_cgroup_at_setup, listen_fds

    harden_fds(opts.preserve_fds)
    validate_id(cid)
    bundle = os.path.abspath(opts.bundle)
    cfg, raw_cfg = load_config(bundle, raw=True)
    log.debug(f"create {cid}: loaded {bundle}/config.json")
    nlisten = listen_fds()
    extra_env = [f"LISTEN_FDS={nlisten}", "LISTEN_PID=1"] if nlisten else []
    binds = []
    notify_host = os.environ.get("NOTIFY_SOCKET")
    if notify_host:
        from ocirun import notify

        extra_env.append("NOTIFY_SOCKET=" + notify.CONTAINER_SOCKET)
        binds.append((notify.state_dir(store, cid), notify.CONTAINER_DIR))
    preserve = nlisten + opts.preserve_fds
    for i in range(3, 3 + preserve):
        try:
            os.fstat(i)
        except OSError:
            raise OcirunError(f"unable to stat preserved-fd {i - 2} (of {preserve})") from None
    linux = cfg.get("linux") if isinstance(cfg.get("linux"), dict) else {}
    # the cgroup is known before the plan: a v1 cgroup mount binds from it
    if opts.rootless:
        # a group of its own only in a cgroup2 subtree delegated to the caller
        cg = cgroups.rootless_resolve(linux.get("cgroupsPath"), cid)
    else:
        cg = cgroups.resolve(linux.get("cgroupsPath"), cid, driver=cgroups.driver(systemd=opts.systemd_cgroup),
                             annotations=cfg.get("annotations"))
    plan = build(cfg, bundle, no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                 preserve_fds=preserve, extra_env=extra_env, console_socket=bool(opts.console_socket),
                 cgroup=cg, join_cgroup=joins_cgroup_at_setup(cg), runtime_binds=binds)
    check_console(opts.detach, plan.terminal, opts.console_socket)
    for w in plan.warnings:
        log.warning(w)
    log.debug(f"create {cid}: plan built: rootfs {plan.rootfs}, new namespaces {','.join(sorted(plan.ns_new)) or '-'}"
              + (f", seccomp filter of {len(plan.seccomp.bpf) // 8} instructions" if plan.seccomp else ""))
    if opts.rootless:
        # no cgroup where nothing is delegated to the caller (cgroup v1, or
        # no writable cgroup2 subtree): limits that cannot be applied are an
        # error, not something to skip quietly
        if not cg:
            _refuse_rootless_limits(linux.get("resources"))
        if "user" not in plan.ns_new and "user" not in plan.ns_paths and os.geteuid() != 0:
            raise OcirunError("linux.namespaces: a rootless container needs a user namespace "
                              "(`ocirun spec --rootless` writes such a config)")

    lockfd = store.create_dir(cid)
    if notify_host:
        os.mkdir(notify.state_dir(store, cid), 0o755)
    spawner = Spawner(plan, cgroup=cg, console_socket=opts.console_socket, pid_file=opts.pid_file,
                      pidfd_socket=opts.pidfd_socket, what=f"create {cid}")
    fifo_fd = None
    made_cg = False
    st = {
        "id": cid, "pid": 0, "start_time": None, "bundle": bundle,
        "rootfs": plan.rootfs, "created": _rfc3339_now(), "ociVersion": plan.oci_version,
        "annotations": plan.annotations, "cgroup": cg, "hooks": plan.hooks,
        "ns": sorted(plan.ns_new), "config": os.path.join(bundle, "config.json"),
    }
    if not plan.mount_ns:
        # the init mounts in our namespace, on the rootfs: remember what was
        # there before, so that only its own mounts are detached later
        from ocirun.host import mounts_at

        st["host_mounts_before"] = mounts_at(plan.rootfs)
    try:
        # recorded before anything exists, so that if this process dies at
        # any point, `delete --force <id>` finds the cgroup and the init
        store.write_file(cid, "config.json", raw_cfg)
        store.write(cid, st)
        fifo = os.path.join(store.dir(cid), FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        if plan.host_root != (0, 0):
            os.chown(fifo, *plan.host_root)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        if cg:
            cgroups.create(cg)
            made_cg = True
            devs = linux.get("devices") if isinstance(linux.get("devices"), list) else []
            cgroups.apply(cg, linux.get("resources"), [d.get("path") for d in devs if isinstance(d, dict)])
            log.debug(f"create {cid}: cgroup v{cg['version']} {' '.join(sorted(set(cg['paths'].values())))}")

        def hooks(pid):
            from ocirun import hooks as H
            from ocirun.jsonutil import dumps

            # runc: "creating" for prestart, createRuntime and
            # createContainer, "created" for startContainer; the init gets
            # both, NUL-separated
            state = oci_state(st, "creating", pid)
            log.debug(f"create {cid}: running prestart/createRuntime hooks")
            H.run_create_runtime(plan.hooks, state)
            return dumps(state) + "\0" + dumps(dict(state, status="created"))

        def seccomp_listener(fd, pid):
            from ocirun import launch

            launch.send_seccomp_listener(plan.seccomp.listener_path, fd, oci_state(st, "creating", pid),
                                         plan.seccomp.metadata)

        def record_pid(pid):
            st["pid"], st["start_time"] = pid, pid_start_time(pid)
            store.write(cid, st)
            log.debug(f"create {cid}: container init is pid {pid}")

        pid = spawner.start(fifo_fd=fifo_fd, preserve_fds=preserve, on_pid=record_pid, on_hooks=hooks,
                            on_seccomp=seccomp_listener)
        os.close(fifo_fd)
        fifo_fd = None
        spawner.publish(pid)
        if not keep_sync:
            spawner.close_sync()
        log.debug(f"create {cid}: created, init waiting on exec.fifo")
        return st, spawner
    except BaseException:
        if fifo_fd is not None:
            os.close(fifo_fd)
        spawner.abort()
        if st.get("host_mounts_before") is not None:
            from ocirun.verbs.common import detach_host_mounts

            detach_host_mounts(st)
        if made_cg:
            try:
                cgroups.remove(cg)
            except OcirunError as e:
                log.warning(str(e))
        store.remove(cid)
        raise
    finally:
        os.close(lockfd)
