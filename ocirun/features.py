"""The runtime-spec features document (features.md) for this build: what
ocirun recognises, generated from the same tables the config parser uses.
It claims ociVersionMax 1.2.1, so it carries no 1.3-only property."""

from ocirun import tables as T

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def features():
    from ocirun import seccomp

    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.1",
        "hooks": HOOKS,
        "mountOptions": T.KNOWN_MOUNT_OPTIONS,
        "linux": {
            "namespaces": sorted(T.NAMESPACES),
            "capabilities": list(T.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": sorted(seccomp.ARCHS),
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.supported_flags()),
            },
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.seccomp.libseccomp.version": seccomp.libseccomp_version()},
        "potentiallyUnsafeConfigAnnotations": [],
    }
    return doc
