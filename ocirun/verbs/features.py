"""The runtime-spec features document (features.md) for this build: what
ocirun recognises, generated from the same tables the config parser uses.
ociVersionMax 1.3.0: netDevices and memoryPolicy are implemented; Intel RDT
is not (a config asking for it fails with a clear error)."""

from ocirun import tables as T

def features():
    from ocirun import seccomp

    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": list(T.HOOK_PHASES),
        "mountOptions": T.KNOWN_MOUNT_OPTIONS,
        "linux": {
            "namespaces": sorted(T.NAMESPACES),
            "capabilities": list(T.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(T.SECCOMP_ACTIONS),
                "operators": sorted(T.SECCOMP_OPERATORS),
                "archs": sorted(T.SECCOMP_ARCHS),
                "knownFlags": sorted(T.SECCOMP_FLAGS),
                "supportedFlags": sorted(seccomp.supported_flags()),
            },
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False, "schemata": False, "enableMonitoring": False},
            "memoryPolicy": {"modes": list(T.MPOL_MODES), "flags": list(T.MPOL_FLAGS)},
            "netDevices": {"enabled": True},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.seccomp.libseccomp.version": seccomp.libseccomp_version()},
        "potentiallyUnsafeConfigAnnotations": [],
    }
    return doc
