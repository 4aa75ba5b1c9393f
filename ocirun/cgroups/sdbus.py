"""A small client of systemd's manager over D-Bus (jeepney), for the systemd
cgroup driver; imported only when a container uses that driver.

Every exchange is time-bounded, so that a stuck bus or a stuck manager gives
a one-line error naming the unit instead of a hang (runc's users report
hangs: go-systemd calls it with no deadline):
  - connecting and authenticating: CONNECT_TIMEOUT (5 s; a local socket
    answers in well under a millisecond when its peer is alive);
  - each method call: CALL_TIMEOUT (25 s, the D-Bus default reply timeout
    that libdbus, sd-bus and so systemctl use);
  - waiting for a job (start/stop of a unit): JOB_TIMEOUT (30 s, runc's).

Where the manager is: the system bus (DBUS_SYSTEM_BUS_ADDRESS, else
/run/dbus/system_bus_socket), else, as root, systemd's private socket
/run/systemd/private (a peer-to-peer connection, no bus daemon), which is
also go-systemd's order.
"""

import os
import socket
from collections import deque

from ocirun.errors import CgroupError

CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 25.0
JOB_TIMEOUT = 30.0

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
PRIVATE_SOCKET = "/run/systemd/private"


class BusError(CgroupError):
    """systemd (or the bus) refused a call: `name` is the D-Bus error name."""

    def __init__(self, msg, name=""):
        super().__init__(msg)
        self.name = name


def _addresses():
    from jeepney.bus import get_connectable_addresses

    env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    out = []
    try:
        out += [(a, True) for a in get_connectable_addresses(env or "unix:path=/run/dbus/system_bus_socket")]
    except Exception:  # noqa: BLE001 - an unusable address: the next one
        pass
    if os.geteuid() == 0 and not env:
        out.append((PRIVATE_SOCKET, False))
    return out


class Manager:
    """A connection to systemd's manager.  `what` names the unit in errors."""

    def __init__(self, what, timeout=CALL_TIMEOUT, job_timeout=JOB_TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                 address=None):
        self.what = what
        self.timeout = timeout
        self.job_timeout = job_timeout
        self.conn = None
        self._jobs = None
        self._filter = None
        try:
            import jeepney  # noqa: F401
        except ImportError:
            raise CgroupError(f"{what}: the systemd cgroup driver needs the Python package jeepney, which is not "
                              "installed") from None
        addrs = [(address, False)] if address else _addresses()
        errs = []
        for addr, is_bus in addrs:
            try:
                self.conn = self._connect(addr, is_bus, connect_timeout)
                break
            except (OSError, TimeoutError, ValueError, CgroupError) as e:
                errs.append(f"{addr.lstrip(chr(0))}: {_why(e)}")
        if self.conn is None:
            raise CgroupError(f"{what}: cannot connect to systemd over D-Bus ({'; '.join(errs) or 'no address'})")

    def _connect(self, addr, is_bus, timeout):
        from jeepney.io.blocking import prep_socket

        sock = prep_socket(addr, timeout=timeout)
        try:
            conn = _connection_class()(sock)
            if is_bus:
                from jeepney.bus_messages import message_bus

                reply = self._send(conn, message_bus.Hello(), timeout, "Hello")
                conn.unique_name = reply[0]
            return conn
        except BaseException:
            sock.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- calls -----------------------------------------------------------------

    def _send(self, conn, msg, timeout, method):
        from jeepney import MessageType
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        try:
            reply = conn.send_and_get_reply(msg, timeout=timeout)
        except TimeoutError:
            raise CgroupError(f"{self.what}: systemd did not answer {method} within {timeout:g} s") from None
        except (OSError, ValueError) as e:
            raise CgroupError(f"{self.what}: D-Bus {method}: {_why(e)}") from None
        if reply.header.message_type is MessageType.error:
            try:
                unwrap_msg(reply)
            except DBusErrorResponse as e:
                text = e.data[0] if e.data and isinstance(e.data[0], str) else ""
                raise BusError(f"{self.what}: systemd refused {method}: {text or e.name}", e.name or "") from None
        return reply.body

    def call(self, method, signature=None, body=(), *, path=MANAGER_PATH, interface=MANAGER):
        from jeepney import DBusAddress, new_method_call

        msg = new_method_call(DBusAddress(path, bus_name=SYSTEMD, interface=interface), method, signature, body)
        return self._send(self.conn, msg, self.timeout, method)

    def _subscribe(self):
        """JobRemoved signals, queued from now on (before the job exists)."""
        if self._jobs is not None:
            return
        from jeepney import MatchRule
        from jeepney.bus_messages import message_bus

        rule = MatchRule(type="signal", interface=MANAGER, member="JobRemoved", path=MANAGER_PATH)
        if self.conn.unique_name:  # a bus: ask the daemon to route them to us
            self._send(self.conn, message_bus.AddMatch(rule), self.timeout, "AddMatch")
        self._jobs = deque(maxlen=1000)
        self._filter = self.conn.filter(rule, queue=self._jobs)
        self.call("Subscribe")

    def wait_job(self, job, verb):
        """The JobRemoved result of `job`: done, canceled, timeout, failed,
        dependency or skipped."""
        import time

        deadline = time.monotonic() + self.job_timeout
        while True:
            while self._jobs:
                sig = self._jobs.popleft()
                if len(sig.body) >= 4 and sig.body[1] == job:
                    return sig.body[3]
            left = deadline - time.monotonic()
            if left <= 0:
                raise CgroupError(f"{self.what}: timed out after {self.job_timeout:g} s waiting for systemd to "
                                  f"{verb} the unit")
            try:
                self.conn.recv_messages(timeout=left)
            except TimeoutError:
                pass
            except (OSError, ValueError) as e:
                raise CgroupError(f"{self.what}: D-Bus: waiting for the {verb} job: {_why(e)}") from None

    # --- what the driver needs -------------------------------------------------------

    def start_transient(self, unit, props):
        """StartTransientUnit (mode "replace") and wait for its job; a failed
        unit is reset (so that its name is free again) before the error.  A
        name still held by a failed unit is freed and tried once more (as
        runc does since 1.2); one held by a live unit is an error."""
        self._subscribe()
        for attempt in (1, 2):
            try:
                (job,) = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", props, []))
                break
            except BusError as e:
                if not e.name.endswith(".UnitExists"):
                    raise
                if attempt == 2:
                    raise CgroupError(f"{self.what} exists already (another container's, or a leftover: "
                                      f"`systemctl stop {unit}`)") from None
                self.reset_failed(unit)
        res = self.wait_job(job, "start")
        if res != "done":
            self.reset_failed(unit)
            raise CgroupError(f"{self.what}: systemd could not start {unit}: job {res}")

    def stop(self, unit):
        """StopUnit and wait for its job; True when the unit existed."""
        self._subscribe()
        try:
            (job,) = self.call("StopUnit", "ss", (unit, "replace"))
        except BusError as e:
            if e.name.endswith(".NoSuchUnit"):
                return False
            raise
        self.wait_job(job, "stop")
        # a unit that ended failed (an OOM kill, say) keeps its name until
        # reset: free it for the next container of that name
        self.reset_failed(unit)
        return True

    def reset_failed(self, unit):
        try:
            self.call("ResetFailedUnit", "s", (unit,))
        except CgroupError:
            pass

    def set_properties(self, unit, props):
        if props:
            self.call("SetUnitProperties", "sba(sv)", (unit, True, props))

    def unit_property(self, unit, interface, name):
        """A property of a loaded unit, or None when there is no such unit."""
        try:
            (path,) = self.call("GetUnit", "s", (unit,))
        except BusError as e:
            if e.name.endswith(".NoSuchUnit"):
                return None
            raise
        (value,) = self.call("Get", "ss", (interface, name), path=path, interface="org.freedesktop.DBus.Properties")
        return value[1]

    def manager_property(self, name):
        (value,) = self.call("Get", "ss", (MANAGER, name), interface="org.freedesktop.DBus.Properties")
        return value[1]


def _connection_class():
    """jeepney's blocking connection without the Hello its constructor says
    with no time limit (said here, on a bus only, with one)."""
    from jeepney.io.blocking import DBusConnection, DBusConnectionBase
    from jeepney.io.common import MessageFilters

    class Connection(DBusConnection):
        def __init__(self, sock):
            DBusConnectionBase.__init__(self, sock)
            self._filters = MessageFilters()

    return Connection


def _why(e):
    from ocirun.errors import strerror

    if isinstance(e, TimeoutError):
        return "no answer in time"
    if isinstance(e, OSError) and e.errno:
        return strerror(e.errno)
    if isinstance(e, socket.timeout):
        return "no answer in time"
    return str(e).splitlines()[0] if str(e) else type(e).__name__
