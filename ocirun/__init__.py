"""ocirun: an OCI container runtime, a drop-in for runc.

Python orchestrates (CLI, config -> plan, state, id maps, console socket,
waiting); a small C program (csrc/init) does everything between clone and
execve inside the container's namespaces.

`import ocirun` is also the Python API (docs/api.md): ocirun.Container,
ocirun.Spec, ocirun.run, the error types.  They load on first use (PEP 562
module __getattr__), so the CLI, which imports ocirun.* submodules, pays
nothing for them.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"

# name -> the module that defines it, imported on first access
_LAZY = {
    "Container": "api", "Process": "api", "Result": "api", "ExecResult": "api", "run": "api",
    "list_containers": "api", "default_root": "api", "PIPE": "api", "STDOUT": "api", "DEVNULL": "api",
    "Spec": "api_spec",
    "OcirunError": "errors", "ConfigError": "errors", "ContainerExists": "errors",
    "ContainerNotFound": "errors", "CgroupError": "errors", "StateError": "errors", "InitError": "errors",
    "UsageError": "errors", "Timeout": "errors",
    "ExecError": "verbs.exec",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'ocirun' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module("ocirun." + mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
