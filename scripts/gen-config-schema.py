#!/usr/bin/env python3
"""Writes ocirun/spec/config-schema.json, the project's JSON schema for
config.json, from the runtime-spec's own schema files (schema/*.json of
github.com/opencontainers/runtime-spec, Apache License 2.0).

The spec splits its schema over files that refer to each other
("defs.json#/definitions/Mount", "config-linux.json#/linux"); this script
bundles them into one self-contained draft-04 document, every definition
under "#/definitions/<file>.<name>" (and each platform's top-level object
under "#/definitions/<file>.<key>"), with nothing else changed: no keyword is
added, removed or loosened.  So the file stays true to the spec by being
regenerated, never edited by hand:

    git clone https://github.com/opencontainers/runtime-spec /tmp/rs
    scripts/gen-config-schema.py --git /tmp/rs/.git v1.3.0    # or: DIR (a schema/ directory)

tests/unit/test_validate.py regenerates it from the mirror when one is at
hand and checks the committed file is that output.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "ocirun", "spec", "config-schema.json")
TOP = "config-schema.json"


def bundle(read, origin):
    """read(name) -> parsed JSON of schema/<name>.  Returns the bundled schema."""
    files = {}
    defs = {}

    def load(name):
        if name not in files:
            files[name] = read(name)
        return files[name]

    def local_name(fname, pointer):
        parts = [p for p in pointer.split("/") if p]
        if parts[:1] == ["definitions"]:
            parts = parts[1:]
        return fname[:-len(".json")] + "." + "/".join(parts)

    def resolve(fname, pointer):
        node = load(fname)
        for p in [p for p in pointer.split("/") if p]:
            node = node[p]
        return node

    def rewrite(node, fname):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str):
                    target, _, pointer = v.partition("#")
                    target = target or fname
                    if target == TOP and not pointer.strip("/"):
                        out[k] = "#"
                        continue
                    name = local_name(target, pointer)
                    if name not in defs:
                        defs[name] = None  # placeholder against cycles
                        defs[name] = rewrite(resolve(target, pointer), target)
                    out[k] = "#/definitions/" + name
                else:
                    out[k] = rewrite(v, fname)
            return out
        if isinstance(node, list):
            return [rewrite(v, fname) for v in node]
        return node

    top = rewrite(load(TOP), TOP)
    out = {
        "$schema": top.pop("$schema"),
        "description": top.pop("description", ""),
        "$comment": ("ocirun's schema for config.json: the runtime-spec's schema files (" + origin + "), "
                     "bundled into one document by scripts/gen-config-schema.py with every keyword unchanged "
                     "(definitions renamed <file>.<name>).  Copyright The Linux Foundation and the "
                     "runtime-spec authors, Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0). "
                     "Regenerate, never edit by hand."),
    }
    out.update(top)
    out["definitions"] = dict(sorted(defs.items()))
    return out


def main(argv):
    if len(argv) == 3 and argv[0] == "--git":
        gitdir, rev = argv[1], argv[2]
        commit = subprocess.run(["git", "--git-dir", gitdir, "rev-parse", rev + "^{commit}"], check=True,
                                capture_output=True, text=True).stdout.strip()

        def read(name):
            return json.loads(subprocess.run(["git", "--git-dir", gitdir, "show", f"{commit}:schema/{name}"],
                                             check=True, capture_output=True).stdout)

        origin = f"opencontainers/runtime-spec {rev}, commit {commit}, schema/"
    elif len(argv) == 1:
        d = argv[0]

        def read(name):
            with open(os.path.join(d, name)) as f:
                return json.load(f)

        origin = "opencontainers/runtime-spec schema/"
    else:
        sys.exit("usage: gen-config-schema.py --git GITDIR REV | SCHEMA_DIR")
    text = json.dumps(bundle(read, origin), indent=1, sort_keys=False) + "\n"
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
