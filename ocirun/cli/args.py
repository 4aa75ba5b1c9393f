"""A flag parser with urfave/cli v1's rules, which callers of runc rely on:
`-flag` and `--flag` are the same, `--opt value` and `--opt=value`, bools take
`--flag=true|false`, options may follow positionals (except for commands that
stop at the first positional, like exec and ps), repeated slice options
accumulate, `--` ends options."""

from ocirun.errors import UsageError

BOOL, STR, INT, LIST = "bool", "str", "int", "list"


class Flag:
    def __init__(self, names, kind, default=None, help="", hidden=False):
        self.names = names if isinstance(names, tuple) else (names,)
        self.kind = kind
        self.default = [] if kind == LIST and default is None else default
        self.help = help
        self.hidden = hidden

    @property
    def key(self):
        return self.names[0].replace("-", "_")


def _truthy(v, name):
    lv = v.lower()
    if lv in ("1", "t", "true"):
        return True
    if lv in ("0", "f", "false"):
        return False
    raise UsageError(f'invalid boolean value "{v}" for -{name}')


def parse(argv, flags, stop_at_positional=False):
    """Returns (values dict keyed by Flag.key, positionals list)."""
    table = {}
    for f in flags:
        for n in f.names:
            table[n] = f
    values = {f.key: (list(f.default) if f.kind == LIST else f.default) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if len(a) < 2 or a[0] != "-" or (stop_at_positional and pos):
            pos.append(a)
            if stop_at_positional:
                pos.extend(argv[i:])
                break
            continue
        name = a.lstrip("-")
        if a.startswith("---") or not name:
            raise UsageError(f"bad flag syntax: {a}")
        val = None
        if "=" in name:
            name, val = name.split("=", 1)
        f = table.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if f.kind == BOOL:
            values[f.key] = True if val is None else _truthy(val, name)
            continue
        if val is None:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            val = argv[i]
            i += 1
        if f.kind == INT:
            try:
                values[f.key] = int(val, 0)
            except ValueError:
                raise UsageError(f'invalid value "{val}" for flag -{name}: parse error') from None
        elif f.kind == LIST:
            values[f.key].append(val)
        else:
            values[f.key] = val
    return values, pos


def help_text(usage, description, flags):
    lines = [f"NAME:\n   {usage}\n", f"USAGE:\n   {description}\n"]
    shown = [f for f in flags if not f.hidden]
    if shown:
        lines.append("OPTIONS:")
        for f in shown:
            names = ", ".join(("--" if len(n) > 1 else "-") + n for n in f.names)
            arg = "" if f.kind == BOOL else " value"
            lines.append(f"   {names}{arg}\t{f.help}")
    return "\n".join(lines) + "\n"
