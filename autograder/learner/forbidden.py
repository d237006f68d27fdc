"""What an exercise asks the learner to write without, seen at run time whatever name it was called by.

An exercise may declare `forbids`: dotted names of what its point is to write by hand
("torch.nn.functional.conv2d", "torch.nn.Conv2d", "torch.optim", "sklearn"). While the learner's function
runs on a case, `Watch` records the first of them that the learner's code called:

- a function or builtin is known by identity, so an alias (`from torch.nn.functional import conv2d as c`,
  `getattr(F, "conv" + "2d")`, `torch.conv2d`, which is the same object) is the same call; a class by the code
  of its own methods (calling it, or `super().__init__` in a subclass); a module by the module that a
  function's code, or a builtin, belongs to; a namespace such as `torch.ops` by the module of its type
  (`torch.ops.aten.convolution(...)` runs `torch._ops`' code). Nothing is imported to resolve a name: one in a
  package that is not imported when a case starts is known as a module prefix only (so declare modules, or
  names in packages the chapter imports, as the exercises do);
- "the learner's code called it" means that no code of the course's lies between the learner's function and
  the call: neither a reference the check put in place of an earlier exercise (`Exercise.uses`) nor a
  class the exercise's driver hands the learner's code (`hands_out`: chapter 03's layers, made with torch).
  A library that the learner called and that calls it counts (`nn.Conv2d(...)(x)` calls `F.conv2d`); so does
  the driver itself calling it (`forward = F.dropout` in a learner's class);
- the watch is `sys.setprofile` in the thread that runs the case and `threading.setprofile` in the threads
  that it starts, with a `TorchFunctionMode` for torch's functions that calls each from Python, so that a
  builtin called from C on the learner's behalf (`map(F.conv2d, ...)`) is seen too; and a partial of the
  forbidden function given as the learner's own is seen before it runs. Code that switches the watch off
  (`sys.setprofile`, leaving the torch mode or entering one of its own) is reported as such (SWITCHED_OFF).

The inline check and the grading sandbox both watch through `judge.run_one_case`; an instructor lifts an
exercise's rule in `nbgrader_config.py` (`c.NNCourse.allow_library_calls`). In the sandbox, a watch whose code a
learner's cell replaced makes the case's record one the grader rejects (`in_sandbox.runner_intact`). What the
watch does not stop is a notebook that rebinds the library's own names before its cases run
(`F.conv2d = my_wrapper`): the watch then knows the wrapper, not the builtin kept aside; that is in plain
sight in the notebook.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import threading
import types
from dataclasses import dataclass, field
from functools import lru_cache

SWITCHED_OFF = "the check's watch (sys.setprofile)"  # what code that switched the watch off is said to have hidden


def describe(name: str) -> str:
    """The one line a learner reads for a case whose code called `name`."""
    if name == SWITCHED_OFF:
        return ("your code switched off the check's watch of which functions it calls (sys.setprofile): "
                "leave it in place")
    return (f"this exercise asks you to write it without {name}, and your code called it: "
            "compute it yourself, as the chapter does")


def cause(name: str) -> str:
    """What the code did, in short, for a report's one-line case and the grade export's reason: "called
    torch.nn.functional.conv2d, which the exercise asks to do without"."""
    if name == SWITCHED_OFF:
        return "switched off the check's watch of its calls"
    return f"called {name}, which the exercise asks to do without"


@dataclass
class Forbidden:
    """`names` resolved: functions and builtins by identity (`objects`, id -> (object, declared name)) and by their
    code, the methods of classes by their code (`codes`), and modules by prefix (`modules`: (prefix, declared
    name)), for the code and the builtins of those modules."""

    names: tuple[str, ...]
    objects: dict[int, tuple[object, str]] = field(default_factory=dict)
    codes: dict[types.CodeType, str] = field(default_factory=dict)
    modules: list[tuple[str, str]] = field(default_factory=list)
    torch_functions: bool = False  # whether one is a torch function, for which the torch mode watches

    @classmethod
    def of(cls, names) -> Forbidden:
        """`names` resolved, once for each set of their packages that is imported."""
        packages = {name.split(".")[0] for name in names}
        return _resolved(tuple(names), frozenset(packages & sys.modules.keys()))

    @classmethod
    def _resolve(cls, names: tuple[str, ...]) -> Forbidden:
        forbidden = cls(names)
        for name in names:
            found = _already_imported(name)
            if found is None or not callable(found):  # a module, a namespace such as `torch.ops`, or not imported yet
                forbidden.modules.append((name, name))
                if found is not None and type(found) is not types.ModuleType:
                    forbidden.modules.append((type(found).__module__, name))  # where the namespace's code lies
            elif isinstance(found, type):
                forbidden.codes.update(dict.fromkeys(_own_method_codes(found), name))
            else:
                forbidden.objects[id(found)] = (found, name)
                if (code := _code_of(found)) is not None:
                    forbidden.codes[code] = name
                forbidden.torch_functions |= getattr(found, "__module__", "") in ("torch", "torch.nn.functional")
        return forbidden

    def of_code(self, code: types.CodeType, module: str) -> str | None:
        return self.codes.get(code) or self._of_module(module)

    def of_callable(self, called) -> str | None:
        kept = self.objects.get(id(called))
        return kept[1] if kept is not None else self._of_module(getattr(called, "__module__", None) or "")

    def _of_module(self, module: str) -> str | None:
        return next((name for prefix, name in self.modules if module == prefix or module.startswith(prefix + ".")),
                    None)


@lru_cache(maxsize=None)
def _resolved(names: tuple[str, ...], imported: frozenset[str]) -> Forbidden:
    return Forbidden._resolve(names)


def _already_imported(name: str):
    """The object `name` names, where its package is imported already (nothing is imported for a name whose
    top package is not: the learner's code must import it, and is then seen by module); else None."""
    parts = name.split(".")
    if parts[0] not in sys.modules:
        return None
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute, None)
        return found


def _code_of(function) -> types.CodeType | None:
    """The code a call of `function` runs first as its own: through decorators (`__wrapped__`, whose wrapper's code
    many functions share) and methods, to the function itself; None for a builtin."""
    inner = inspect.unwrap(function)
    return getattr(getattr(inner, "__func__", inner), "__code__", None)


def _own_method_codes(cls: type) -> list[types.CodeType]:
    """The code of the methods `cls` and its bases from its own module define: `nn.Conv2d`'s and `_ConvNd`'s, not
    `nn.Module`'s, which every learner's model calls."""
    return [code for klass in cls.__mro__ if klass.__module__ == cls.__module__ for value in vars(klass).values()
            if isinstance(code := getattr(getattr(value, "__func__", value), "__code__", None), types.CodeType)]


def _codes_within(course_code) -> set[types.CodeType]:
    """The code of a function, or of a class's own methods, and of every function defined inside them."""
    todo = _own_method_codes(course_code) if isinstance(course_code, type) else [course_code.__code__]
    found = set()
    while todo:
        code = todo.pop()
        found.add(code)
        todo.extend(const for const in code.co_consts if isinstance(const, types.CodeType) and const not in found)
    return found


def _unwrapped(fn):
    """The callable a functools.partial (of a partial ...) calls in the end."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


class Watch:
    """Records the first forbidden call the learner's code makes while it is entered (see the module's text):
    `called` is then the declared name, or SWITCHED_OFF. Not reentrant; one watch per case."""

    def __init__(self, forbidden: Forbidden, fn, references: dict, call=None):
        self.forbidden = forbidden
        self.fn = fn
        helpers = getattr(call, "hands_out", ())  # classes the exercise's driver gives the learner's code to call
        self.exempt = set().union(*map(_codes_within, [*references.values(), *helpers]))

    def __enter__(self) -> None:
        # a partial of the forbidden function as the learner's function: the driver's call of it reaches it from C
        self.called = self.forbidden.of_callable(_unwrapped(self.fn))
        self._previous = sys.getprofile(), threading.getprofile()
        self._hook = self._profile  # one bound method, to compare with what is set at the end
        sys.setprofile(self._hook)
        threading.setprofile(self._hook)
        self._mode = _torch_mode() if self.forbidden.torch_functions and "torch" in sys.modules else None
        if self._mode is not None:
            self._mode.__enter__()

    def __exit__(self, *exc) -> None:
        switched_off = sys.getprofile() is not self._hook
        sys.setprofile(self._previous[0])
        threading.setprofile(self._previous[1])
        if self._mode is not None:
            from torch.overrides import _get_current_function_mode

            switched_off |= _get_current_function_mode() is not self._mode
            with contextlib.suppress(RuntimeError, IndexError, AssertionError):  # the learner's code left the mode
                self._mode.__exit__(None, None, None)
        if switched_off and self.called is None:
            self.called = SWITCHED_OFF

    def _profile(self, frame, event, arg) -> None:
        if self.called is not None:  # the first is the one reported
            return
        if event == "call":
            name = self.forbidden.of_code(frame.f_code, frame.f_globals.get("__name__") or "")
            if name is not None and self._by_learner(frame.f_back):
                self.called = name
        elif event == "c_call":
            name = self.forbidden.of_callable(arg)
            if name is not None and self._by_learner(frame):
                self.called = name

    def _by_learner(self, frame) -> bool:
        """Whether the call made from `frame` is the learner's: no code of the course's lies on its way out."""
        while frame is not None:
            if frame.f_code in self.exempt:
                return False
            frame = frame.f_back
        return True


def _torch_mode():
    """A torch function mode that calls every torch function from Python: one that C code calls (`map(F.conv2d,
    ...)`) makes no profile event, but its call here does, from a frame whose way out is the caller's."""
    from torch.overrides import TorchFunctionMode

    class CalledFromPython(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    return CalledFromPython()
