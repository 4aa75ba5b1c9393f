"""Load a bundle's config.json with errors that name the file and the cause."""

import os

from ocirun.errors import ConfigError


def load_config(bundle, raw=False):
    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        from ocirun.errors import strerror

        raise ConfigError(f"open {path}: {strerror(e.errno)}") from None
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    from ocirun.jsonutil import JSONError, loads

    data = b"".join(chunks)
    try:
        cfg = loads(data)
    except JSONError as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError("config.json: the top level must be a JSON object")
    return (cfg, data) if raw else cfg
