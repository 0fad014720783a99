"""Where the config goes: the project files a training's config (or a part of it) enters, in order.

``python tests/config_flow.py [overrides]`` runs ``python -m softmax_exp.train [overrides]`` in this
process under a profiler that follows the config from the Hydra task (``softmax_exp.train.task``) through
every call that is handed it or a part of it, and prints how many times each file was entered that way
(tests/test_layers.py holds the counts to at most 2).

What counts as the config or a part of it (its *parts*): the DictConfig the task gets and its nodes; every
object a call returns when it was handed a part and returns a dataclass, a DictConfig, or a tuple of them
(the checked ``Config``, its groups, what is derived from them: TrainParams, DatasetOptions, ...), and
the values held by those (nested dataclasses, lists, dicts, strings, floats; not None, booleans or small
ints, which Python shares with everything). A call *carries* the config when one of its arguments is a part
(or a list, tuple or dict holding one). A call that carries it into a project file other than the file of
the last such call is an *entry*, counted once per call site (a loop's calls of one line are one entry);
the output counts the entries of each file.
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


class Flow:
    """A profiler hook (``sys.setprofile``) following the config; see the module's doc."""

    def __init__(self) -> None:
        self.parts: dict[int, object] = {}  # id -> object (kept alive, so that ids stay unique)
        self.frames: set[int] = set()  # ids of the frames of calls that carry the config
        self.files: list[str] = []  # the file of each entry, in order
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
            path = str(Path(code.co_filename).relative_to(ROOT))
            caller = frame.f_back
            site = (caller.f_code.co_filename, caller.f_lineno, code.co_qualname) if caller else ("", 0, "")
            if (not self.files or self.files[-1] != path) and site not in self.sites:
                self.sites.add(site)
                self.files.append(path)
        elif event == "return" and id(frame) in self.frames:
            self.frames.discard(id(frame))
            values = arg if isinstance(arg, tuple) else (arg,)
            for value in values:
                if dataclasses.is_dataclass(value) and not isinstance(value, type) or _is_dictconfig(value):
                    self.add(value)

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
        if isinstance(value, int) and -5 <= value <= 256:
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
    print(json.dumps({"entries": flow.entries(), "order": flow.files}))


if __name__ == "__main__":
    main(sys.argv[1:])
