"""`run`: create + start + wait, forwarding signals; the container's exit
status (128+N when killed by signal N).  Cleans up unless detached or
keep."""

from ocirun import log
from ocirun.errors import OcirunError, StateError
from ocirun.verbs.create import create
from ocirun.verbs.delete import force_delete
from ocirun.verbs.start import start


def run(store, cid, opts, keep=False, subreaper=True):
    from ocirun import front
    from ocirun.foreground import SignalForwarder, wait_status

    if opts.detach:
        front.subreaper(False)
        create(store, cid, opts)
        try:
            start(store, cid)
        except BaseException:
            force_delete(store, cid)
            raise
        return 0
    front.subreaper(subreaper)
    made = False  # only what this run created is deleted: never a container that had this id already
    try:
        with SignalForwarder() as fwd:
            st, spawner = create(store, cid, opts, keep_sync=True)
            made = True
            try:
                started = start(store, cid, notify_wait=False)
            except BaseException as e:
                why = None
                if isinstance(e, StateError) and str(e) == "container process is already dead":
                    # dead before its execve: what it reported, or how it died
                    why = spawner.execve_failure(st["pid"], dead=True)
                spawner.close_sync()
                force_delete(store, cid)
                if why:
                    raise StateError(why) from None
                raise
            fwd.set_target(st["pid"])
            nsock = started.get("notify_sock")
            if nsock is not None:
                _relay_in_background(nsock, st)
            err = spawner.execve_failure(st["pid"])
            spawner.close_sync()
            if err:
                log.error(err)
            return wait_status(st["pid"], spawner.terminal.master)
    finally:
        if made and not keep:
            try:
                force_delete(store, cid)
            except OcirunError as e:
                log.warning(str(e))


def _relay_in_background(nsock, st):
    """`run` forwards READY= while it waits for the container to exit."""
    import threading

    from ocirun import notify

    def relay():
        try:
            notify.relay_ready(nsock, st["pid"], st.get("start_time"), notify.host_socket())
        except OSError as e:
            log.warning(f"NOTIFY_SOCKET: {e}")
        finally:
            nsock.close()

    threading.Thread(target=relay, daemon=True).start()
