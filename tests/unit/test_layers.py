"""The import graph of ocirun/: no module imports from a layer above its
own, and no modules import each other (directly or round a longer cycle).
Every import counts, the lazy ones inside functions too.

The layers, lowest first.  A module may import from its own layer or a
lower one; a new module must be placed here."""

import ast
import os

import pytest

LAYERS = [
    # facts and formats: the names, the wire format, the host, typed config values
    ["ocirun", "ocirun.errors", "ocirun.tables", "ocirun.proto", "ocirun.host", "ocirun.jsonutil", "ocirun.config",
     "ocirun._native_c", "ocirun._seccomp_c", "ocirun._commit", "ocirun._native_build", "ocirun._seccomp_build",
     "ocirun.tty", "ocirun.spec", "ocirun.spec.template"],
    # leaf services
    ["ocirun._native", "ocirun.log", "ocirun.state", "ocirun.seccomp", "ocirun.netdev", "ocirun.spec.load"],
    # the cgroup library, bottom up (on host's read/write and errors' CgroupError)
    ["ocirun.cgroups.devices", "ocirun.cgroups.stats", "ocirun.cgroups.oom", "ocirun.cgroups.sdbus"],
    ["ocirun.cgroups.resources"],
    ["ocirun.cgroups.systemd"],
    ["ocirun.cgroups"],
    # config.json -> plan
    ["ocirun.plan"],
    # running the init and what goes with it
    ["ocirun.front", "ocirun.notify", "ocirun.hooks", "ocirun.launch"],
    ["ocirun.foreground"],
    # the verbs
    ["ocirun.verbs"],
    # the command line
    ["ocirun.cli.args"],
    ["ocirun.cli", "ocirun.cli.commands", "ocirun.cli.cgroupcmds"],
    ["ocirun.__main__"],
]
ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "ocirun")


def _modules():
    mods = {}
    for d, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                name = "ocirun." + os.path.relpath(path, ROOT)[:-3].replace("/", ".")
                mods[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def _graph():
    mods = _modules()
    g = {}
    for name, path in mods.items():
        deps = set()
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ocirun":
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "ocirun")
        deps.discard(name)
        g[name] = deps
    return g


def _layer_of(name):
    """The layer listing the module, else the one listing its package (a
    new module of ocirun.verbs, say); None for a module not placed."""
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    parent = name.rpartition(".")[0]
    return _layer_of(parent) if parent not in ("", "ocirun") else None


def test_every_module_has_a_layer():
    assert [m for m in _graph() if _layer_of(m) is None] == []


def test_no_import_reaches_up():
    up = []
    for mod, deps in _graph().items():
        for dep in deps:
            if _layer_of(dep) is None or _layer_of(dep) > _layer_of(mod):
                up.append(f"{mod} -> {dep}")
    assert up == []


def _cycles(g):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_two_modules_import_each_other():
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("g,want", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_itself(g, want):
    assert _cycles(g) == want
