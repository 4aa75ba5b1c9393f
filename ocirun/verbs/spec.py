"""`spec`: write a starting config.json into a bundle directory."""

import os

from ocirun.errors import OcirunError


def spec(bundle=".", rootless=False):
    from ocirun.jsonutil import dumps_indent
    from ocirun.spec.template import default_spec

    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise OcirunError("File config.json exists. Remove it first")
    data = dumps_indent(default_spec(rootless), 2)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        from ocirun.errors import strerror

        raise OcirunError(f"{path}: {strerror(e.errno)}") from None
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
