"""Where the config goes: the project files a training's config (or a part of it) enters, in order.

``python tests/config_flow.py [overrides]`` runs ``python -m softmax_exp.train [overrides]`` in this
process under a profiler that follows the config from the Hydra task (``softmax_exp.train.task``) through
every call that is handed it or a part of it, and prints how many times each file was entered that way
(tests/test_layers.py holds the counts to at most 2).

The config's *parts*: the DictConfig the task gets and its nodes, the checked ``Config`` made from it and
its groups, and every value these hold (nested dataclasses, lists, dicts, strings, floats; not None,
booleans, small ints or identifier-like strings, which Python shares with every equal literal). An object
made from a part (the dataset's resolved options, an opened store) is not a part, but a part it holds is.
A call *carries* the config when one of its arguments is a part (or a list, tuple or dict holding one). A
call that carries it from one file into another project file *enters* that file; a call site counts once
(a loop's calls on one line are one entry), and a context manager is entered from its ``with``. The output
counts the entries of each file: a file entered twice is one the config came back to after leaving it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = (str(ROOT / "softmax_exp") + "/", str(ROOT / "hydra_plugins") + "/")
TASK = (str(ROOT / "softmax_exp" / "train.py"), "task")
CONFIG = "Config"  # softmax_exp.config.schema.Config, the checked config
SKIPPED = ("/contextlib.py", "/functools.py")  # a `with` block's or a decorator's frames between two calls


class Flow:
    """A profiler hook (``sys.setprofile``) following the config; see the module's doc."""

    def __init__(self) -> None:
        self.parts: dict[int, object] = {}  # id -> object (kept alive, so that ids stay unique)
        self.frames: set[int] = set()  # ids of the frames of calls that carry the config
        self.files: list[str] = []  # the file of each entry, in order
        self.calls: list[str] = []  # each entry's caller and callee, in order
        self.sites: set[tuple[str, int, str]] = set()  # (caller file, line, callee) of the entries so far

    def __call__(self, frame, event, arg) -> None:
        code = frame.f_code
        if event == "call":
            if not self.parts:
                if (code.co_filename, code.co_name) == TASK:
                    self.add(frame.f_locals.get("cfg"))
                else:
                    return
            if not code.co_filename.startswith(PROJECT) or not self.carries(frame):
                return
            self.frames.add(id(frame))
            caller = frame.f_back
            while caller is not None and caller.f_code.co_filename.endswith(SKIPPED):
                caller = caller.f_back  # a context manager's generator is entered from where `with` is
            if caller is not None and caller.f_code.co_filename == code.co_filename:
                return  # a call inside one file enters nothing
            path = str(Path(code.co_filename).relative_to(ROOT))
            site = (caller.f_code.co_filename, caller.f_lineno, code.co_qualname) if caller else ("", 0, "")
            if site not in self.sites:
                self.sites.add(site)
                self.files.append(path)
                where = f"{Path(site[0]).name}:{site[1]}" if caller else "?"
                self.calls.append(f"{where} -> {path}:{code.co_qualname}")
        elif event == "return" and id(frame) in self.frames:
            self.frames.discard(id(frame))
            if type(arg).__name__ == CONFIG:
                self.add(arg)

    def carries(self, frame) -> bool:
        code = frame.f_code
        n = code.co_argcount + code.co_kwonlyargcount
        names = list(code.co_varnames[:n])
        if code.co_flags & 0x04:  # *args
            names.append(code.co_varnames[n])
            n += 1
        if code.co_flags & 0x08:  # **kwargs
            names.append(code.co_varnames[n])
        local = frame.f_locals
        for name in names:
            if name == "self":
                continue
            value = local.get(name)
            if id(value) in self.parts:
                return True
            if isinstance(value, (list, tuple)):
                if any(id(v) in self.parts for v in value):
                    return True
            elif isinstance(value, dict) and any(id(v) in self.parts for v in value.values()):
                return True
        return False

    def add(self, value, depth: int = 0) -> None:
        if value is None or isinstance(value, bool) or depth > 6 or id(value) in self.parts:
            return
        if isinstance(value, int) and -5 <= value <= 256 or isinstance(value, str) and value.isidentifier():
            return
        self.parts[id(value)] = value
        if _is_dictconfig(value):
            for key in value.keys():
                node = value._get_node(key)
                if _is_dictconfig(node):
                    self.add(node, depth + 1)
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                self.add(getattr(value, f.name, None), depth + 1)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self.add(v, depth + 1)
        elif isinstance(value, dict):
            for v in value.values():
                self.add(v, depth + 1)

    def entries(self) -> dict[str, int]:
        return dict(Counter(self.files))


def _is_dictconfig(value) -> bool:
    return type(value).__name__ in ("DictConfig", "ListConfig")


def main(overrides: list[str]) -> None:
    flow = Flow()
    sys.argv = ["softmax_exp.train", *overrides]
    from softmax_exp import train

    sys.setprofile(flow)
    try:
        train.main()
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
    print(json.dumps({"entries": flow.entries(), "order": flow.files, "calls": flow.calls}))


if __name__ == "__main__":
    main(sys.argv[1:])
