"""ocirun: an OCI container runtime, a drop-in for runc.

Python orchestrates (CLI, config -> plan, state, id maps, console socket,
waiting); a small C program (csrc/init) does everything between clone and
execve inside the container's namespaces.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
