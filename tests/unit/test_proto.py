"""ocirun/proto.py must mirror csrc/init/proto.h exactly."""

import os
import re

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


def test_struct_sizes():
    assert P.REC_MOUNT.size == 40
    assert P.REC_DEVICE.size == 32
    assert P.MSG_HDR.size == 16


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
