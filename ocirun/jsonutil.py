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


def _careful_error(text, i):
    """Why `text` failed to parse: only on the error path.  The C scanner
    reports syntax errors through json.decoder.JSONDecodeError, which it only
    finds once json.decoder has been imported (otherwise: "SystemError ...
    returned NULL without setting an exception"); importing it here keeps
    `json` and `re` off the hot path."""
    import json.decoder  # noqa: F401  (makes the scanner's errors work)

    try:
        _scan(text, i)
    except StopIteration as e:
        return f"invalid character at offset {e.value}"
    except ValueError as e:  # json.decoder.JSONDecodeError
        return str(e)
    except RecursionError:
        return NESTING
    return "invalid JSON"


NESTING = "nested too deeply"


def _lone_surrogate(obj, path):
    """The path of the first string (or key) holding a lone UTF-16
    surrogate ("\\ud800"), which is not Unicode and cannot be encoded."""
    todo = [(obj, path)]
    while todo:
        o, p = todo.pop()
        if isinstance(o, str):
            if not o.isascii():
                try:
                    o.encode("utf-8")
                except UnicodeEncodeError as e:
                    return p, o[e.start]
        elif isinstance(o, dict):
            for k, v in o.items():
                sub = f"{p}.{k}" if p else k
                todo.append((k, f"a key of {p}" if p else "a top-level key"))
                todo.append((v, sub))
        elif isinstance(o, list):
            todo.extend((v, f"{p}[{j}]") for j, v in enumerate(o))
    return None


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
    except RecursionError:
        raise JSONError(NESTING) from None
    except Exception:  # SystemError: see _careful_error
        raise JSONError(_careful_error(text, i)) from None
    if text[end:].strip(_WS):
        raise JSONError(f"extra data at offset {end}")
    # "\ud800" escapes decode to lone surrogates: not text, and they would
    # fail later wherever the string is encoded
    if "\\ud" in text or "\\uD" in text:
        bad = _lone_surrogate(obj, "")
        if bad:
            raise JSONError(f"{bad[0] or 'the document'}: lone UTF-16 surrogate {bad[1].encode('unicode_escape').decode()} "
                            "(not valid Unicode)")
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
