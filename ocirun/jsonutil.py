"""JSON without the import cost of the json package.

`import json` pulls in `re` and costs ~10 ms, a large share of a container
start.  The C accelerator `_json` that json itself uses is imported directly:
its scanner only needs a small context object, and the encoder is used as
json.dumps uses it.  Output is byte-identical to json.dumps for the shapes
ocirun writes.
"""

import _json


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"invalid constant {name}")


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(text):
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONError(f"invalid UTF-8: {e}") from None
    if text.startswith("\ufeff"):
        raise JSONError("unexpected UTF-8 BOM")
    i = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, i)
    except StopIteration as e:
        raise JSONError(f"invalid character at offset {e.value}") from None
    except ValueError as e:  # json.decoder.JSONDecodeError
        raise JSONError(str(e)) from None
    if text[end:].strip(_WS):
        raise JSONError(f"extra data at offset {end}")
    return obj


_compact = _json.make_encoder(
    None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def dumps(obj):
    """Compact JSON (separators ',' ':'), like json.dumps(separators=(',', ':'))."""
    return "".join(_compact(obj, 0))


def _pretty(obj, indent, level, out):
    if isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        pad = " " * (indent * (level + 1))
        out.append("{\n")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(pad)
            out.append(_json.encode_basestring_ascii(str(k)))
            out.append(": ")
            _pretty(v, indent, level + 1, out)
        out.append("\n" + " " * (indent * level) + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        pad = " " * (indent * (level + 1))
        out.append("[\n")
        for i, v in enumerate(obj):
            if i:
                out.append(",\n")
            out.append(pad)
            _pretty(v, indent, level + 1, out)
        out.append("\n" + " " * (indent * level) + "]")
    else:
        out.append(dumps(obj))


def dumps_indent(obj, indent=2):
    out = []
    _pretty(obj, indent, 0, out)
    return "".join(out)
