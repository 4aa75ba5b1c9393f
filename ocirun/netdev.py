"""linux.netDevices (runtime-spec 1.3): move existing host network devices
into the container's network namespace, under a new name if asked, with
their permanent global addresses, and set them up.

Netlink goes through pyroute2, loaded only for a config that has netDevices.
The runtime never enters the container's namespace: the init opens a
NETLINK_ROUTE socket inside it and sends it over the sync socket (M_NETLINK);
the namespace's fd comes from that socket (SIOCGSKNS).  As the spec says,
devices are never moved back: when the namespace goes, the kernel returns
physical devices to the host and destroys virtual ones."""

import errno
import fcntl
import os

from ocirun import config as C
from ocirun.errors import ConfigError, OcirunError, strerror

SIOCGSKNS = 0x894C
IFNAMSIZ = 16
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def _valid_ifname(name, template_ok):
    """The kernel's dev_valid_name(), plus one %d for a name template."""
    if not name or len(name.encode()) >= IFNAMSIZ or name in (".", ".."):
        return False
    if any(c in name for c in "/:") or any(c.isspace() for c in name):
        return False
    if "%" in name:
        return template_ok and name.count("%") == 1 and "%d" in name
    return True


def parse(linux, has_netns):
    """[(host name, name in the container)] from linux.netDevices."""
    devs = C.obj(linux.get("netDevices"), "linux.netDevices")
    out, names = [], set()
    for host, spec in devs.items():
        field = f"linux.netDevices.{host}"
        if not _valid_ifname(host, False):
            raise ConfigError(f"{field}: not a valid network device name")
        spec = C.obj(spec, field)
        name = spec.get("name")
        if name is None or name == "":
            name = host
        if not isinstance(name, str) or not _valid_ifname(name, True):
            raise ConfigError(f"{field}.name: {name!r} is not a valid network device name")
        if "%" not in name:
            if name in names:
                raise ConfigError(f"{field}.name: {name!r} is given to two devices")
            names.add(name)
        out.append((host, name))
    if out and not has_netns:
        raise ConfigError("linux.netDevices: needs a network namespace (linux.namespaces has none)")
    return out


def _addresses(ipr, index):
    """The device's permanent addresses of global scope, as add() arguments."""
    out = []
    for a in ipr.get_addr(index=index):
        flags = a.get_attr("IFA_FLAGS")
        if flags is None:
            flags = a["flags"]
        if not flags & IFA_F_PERMANENT or a["scope"] != RT_SCOPE_UNIVERSE:
            continue
        kw = {"address": a.get_attr("IFA_ADDRESS"), "prefixlen": a["prefixlen"], "family": a["family"]}
        local = a.get_attr("IFA_LOCAL")
        if local:
            kw["local"] = local
        brd = a.get_attr("IFA_BROADCAST")
        if brd:
            kw["broadcast"] = brd
        out.append(kw)
    return out


def _why(e):
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    if isinstance(code, int) and code > 0:
        return strerror(code)
    return str(e) or e.__class__.__name__


def move(devices, route_fd):
    """Move and configure `devices` ([(host, name)]); `route_fd` is the
    route socket from inside the container's network namespace, consumed."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        nsfd = fcntl.ioctl(route_fd, SIOCGSKNS)
    except OSError as e:
        os.close(route_fd)
        raise OcirunError(f"linux.netDevices: the container's network namespace: {strerror(e.errno)}") from None
    try:
        with IPRoute() as host, IPRoute(fileno=route_fd) as ctr:
            route_fd = -1  # ctr owns it now
            # check every device before moving any: a failed create must not
            # have taken some of them (the kernel would destroy a moved veth)
            found = []
            for hname, name in devices:
                field = f"linux.netDevices.{hname}"
                idx = host.link_lookup(ifname=hname)
                if not idx:
                    raise OcirunError(f"{field}: no network device {hname!r} on the host")
                if "%" not in name and ctr.link_lookup(ifname=name):
                    raise OcirunError(f"{field}: a network device named {name!r} already exists in the "
                                      "container's network namespace")
                found.append((field, idx[0], name))
            for field, idx, name in found:
                link = host.get_links(idx)[0]
                mac = link.get_attr("IFLA_ADDRESS")
                addrs = _addresses(host, idx)
                try:
                    host.link("set", index=idx, net_ns_fd=nsfd, ifname=name)
                except NetlinkError as e:
                    if e.code == errno.EEXIST:
                        raise OcirunError(f"{field}: a network device named {name!r} already exists in the "
                                          "container's network namespace") from None
                    raise OcirunError(f"{field}: moving it into the container's network namespace: "
                                      f"{_why(e)}") from None
                new = _find(ctr, name, idx, mac)
                if new is None:
                    raise OcirunError(f"{field}: moved, but not found in the container's network namespace")
                try:
                    for kw in addrs:
                        ctr.addr("add", index=new, **kw)
                    ctr.link("set", index=new, state="up")
                except NetlinkError as e:
                    raise OcirunError(f"{field}: configuring it in the container: {_why(e)}") from None
    finally:
        os.close(nsfd)
        if route_fd >= 0:
            os.close(route_fd)


def _find(ipr, name, old_index, mac):
    """The moved device's index in the container: by name, or for a name
    template by the index the kernel keeps when it can, checked by MAC."""
    if "%" not in name:
        idx = ipr.link_lookup(ifname=name)
        return idx[0] if idx else None
    for link in ipr.get_links():
        if link["index"] == old_index and link.get_attr("IFLA_ADDRESS") == mac:
            return old_index
    prefix = name.split("%", 1)[0]
    for link in ipr.get_links():
        if link.get_attr("IFLA_ADDRESS") == mac and (link.get_attr("IFLA_IFNAME") or "").startswith(prefix):
            return link["index"]
    return None
