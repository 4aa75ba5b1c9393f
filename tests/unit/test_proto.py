"""ocirun/proto.py must mirror csrc/init/proto.h exactly."""

import os
import re
import struct

import pytest

from ocirun import proto as P

HDR = os.path.join(os.path.dirname(__file__), "..", "..", "csrc", "init", "proto.h")


def _c_constants():
    text = open(HDR).read()
    consts = {}
    for name, val in re.findall(r"\b([RMS]_[A-Z_]+|MK_[A-Z]+)\s*=\s*(\d+)", text):
        consts[name] = int(val)
    for m in re.finditer(r"enum ocirun_step \{([^}]*)\}", text):
        names = [n.strip().split("=")[0].strip() for n in m.group(1).split(",") if n.strip()]
        for i, n in enumerate(names):
            consts[n] = i + 1
    for name, shift in re.findall(r"#define OCIRUN_MNT_([A-Z_]+)\s+\(1ULL << (\d+)\)", text):
        consts["MNT_" + name] = 1 << int(shift)
    return consts


def test_record_and_message_types_match():
    c = _c_constants()
    for name, val in c.items():
        if name.startswith(("R_", "M_", "MK_", "MNT_")) and name != "R_MAX":
            assert getattr(P, name) == val, name


def test_steps_match():
    c = _c_constants()
    for name, val in c.items():
        if name.startswith("S_"):
            assert P.STEPS[val] == name[2:].lower(), name


def _layouts():
    return {name: v for name, v in vars(P).items() if isinstance(v, P.Layout)}


def _header_structs():
    text = re.sub(r"/\*.*?\*/", "", open(HDR).read(), flags=re.S)
    return re.findall(r"struct\s+\w+\s*\{[^}]*\};", text)


@pytest.fixture(scope="module")
def c_structs(tmp_path_factory):
    """The C compiler's view of every struct in proto.h: cffi compiles a
    module that includes the header (no root needed), checks the cdef of each
    struct against the compiled layout and answers sizeof/offsetof from it."""
    cffi = pytest.importorskip("cffi")
    import importlib.util
    import shutil

    if not shutil.which("cc") and not shutil.which("gcc"):
        pytest.skip("no C compiler")
    structs = _header_structs()
    ffi = cffi.FFI()
    ffi.cdef("\n".join(structs))
    ffi.set_source("_ocirun_proto_check", '#include "proto.h"', include_dirs=[os.path.dirname(os.path.abspath(HDR))])
    so = ffi.compile(tmpdir=str(tmp_path_factory.mktemp("protocheck")))
    spec = importlib.util.spec_from_file_location("_ocirun_proto_check", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, {re.match(r"struct\s+(\w+)", s).group(1) for s in structs}


def test_every_record_layout_matches_its_c_struct(c_structs):
    ffi, names = c_structs
    layouts = _layouts()
    assert len(layouts) >= 18
    for pyname, lay in layouts.items():
        ctype = f"struct {lay.cname}"
        assert lay.cname in names, f"{pyname}: no {ctype} in proto.h"
        c_fields = [f for f, _ in ffi.typeof(ctype).fields]
        assert len(lay.names.split()) == len(lay.format) - 1, f"{pyname}: one name per format character"
        py_fields = [n for n, _f in lay.fields]
        if lay.cname == "ocirun_msg":  # the header only: detail[] follows
            assert c_fields[:-1] == py_fields, pyname
            assert ffi.offsetof(ctype, "detail") == lay.size == 16, pyname
        else:
            assert c_fields == py_fields, pyname
            assert ffi.sizeof(ctype) == lay.size, pyname
        cf = dict(ffi.typeof(ctype).fields)
        for field, fmt in lay.fields:
            assert ffi.offsetof(ctype, field) == lay.offsets[field], f"{pyname}.{field}"
            ct = cf[field].type
            assert ffi.sizeof(ct) == struct.calcsize("=" + fmt), f"{pyname}.{field}"
            signed = ct.kind == "primitive" and ffi.cast(ct, -1) < 0
            assert signed == fmt.islower(), f"{pyname}.{field}: signedness"


def test_every_c_struct_is_declared_in_python(c_structs):
    _ffi, names = c_structs
    assert names <= {lay.cname for lay in _layouts().values()}


def test_a_moved_field_is_caught():
    """The comparison itself: a header with two fields swapped must differ."""
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef("struct rec_rlimit { unsigned int resource, index; unsigned long long hard; unsigned int pad; "
             "unsigned long long soft; };")
    assert ffi.offsetof("struct rec_rlimit", "soft") != P.REC_RLIMIT.offsets["soft"]


def test_plan_writer_layout():
    w = P.PlanWriter()
    w.str(P.R_HOSTNAME, "abc")
    w.flag(P.R_NNP)
    blob = w.finish()
    import struct

    magic, version, total, n = struct.unpack_from("=IIII", blob)
    assert (magic, version, total, n) == (P.PLAN_MAGIC, P.PLAN_VERSION, len(blob), 2)
    assert len(blob) % 8 == 0


def test_cstr_rejects_nul():
    import pytest

    with pytest.raises(ValueError):
        P.cstr("a\0b")
