"""Demonstration cells, and which of them grading may leave out.

The course's author tags a code cell `demo` (cell metadata `"tags": ["demo"]`) when it only
demonstrates: a plot, a long training run, a comparison with scikit-learn or torch, a printout.
`nncourse sync` keeps the tag in learner/ and nbgrader's release keeps it in the release, but
grading never reads it from what a learner hands in: a submission's metadata is the learner's to
edit. What grading skips is decided here, from two things the learner cannot change:

1. the text of the course's own demonstration cells (the chapter's notebook in course/, which the
   grader holds): a submitted cell is a candidate only when its source is exactly one of those
   texts (trailing spaces aside), so a cell the learner wrote or edited always runs; and
2. a name analysis of the submission's code: a candidate is skipped only when no name it binds is
   read by a cell that runs (at its top level or inside a function, read before the cell binds it
   itself) or is a graded exercise's name, and it runs as soon as any running cell reads names in
   ways the analysis cannot see (`eval`, `exec`, `globals()`, `get_ipython()`, ...).

Why this cannot raise a grade: skipping only removes code, and only the course's own code, never a
definition that code which runs could look up; any grade a skipped cell's absence could give, the
learner could have had by deleting that cell, which every learner may do. Why it does not lower an
honest learner's grade: a cell the learner changed runs, and a course cell whose names the learner's
code uses runs too. What the analysis does not follow is a demonstration's side effects on objects
that a running cell reads under another name (mutating an array in place, numpy's global random
state, matplotlib's state): the course's demonstration cells leave those alone, and
tests/test_demo_cells.py grades every chapter's references with its demonstrations skipped.

The analysis reads learner text in the grader's own process, so it is bounded like any learner input: a
cell longer than MAX_ANALYSED_CHARS, a submission longer than MAX_TOTAL_ANALYSED, code nested too deep to
parse, and an analysis past ANALYSIS_SECONDS all count as code the analysis cannot see through, and keep
every demonstration (running everything costs time, never a grade); `cells_to_skip` never raises.
"""
from __future__ import annotations

import ast
import contextvars
import symtable
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

DEMO_TAG = "demo"
# Names through which code reads the namespace without naming what it reads: a running cell that uses
# one keeps every demonstration.
DYNAMIC = frozenset({"eval", "exec", "globals", "locals", "vars", "dir", "get_ipython", "__builtins__", "__main__",
                     "__import__", "builtins"})
# Bounds on the analysis (learner text, read in the grader's process); past any of them nothing is skipped.
# The course's longest code cell is 11,787 characters (ch08's training script) and its largest chapter 59,010
# characters of code (ch09). A cell of 30,000 characters at most keeps each step that the clock cannot interrupt
# (one parse, one pass of IPython's tokenizer, one symbol table) short: measured on a 2-core AMD EPYC, a
# 30,000-character f-string parses in 0.21 s (20,000: 0.16 s), 30,000 characters of plain assignments take 0.07 s,
# and `%magic` lines are stopped at ANALYSIS_SECONDS; 50,000 characters of `%magic` lines take 60 s to transform.
MAX_ANALYSED_CHARS = 30_000  # one cell: ~2.5x the course's longest
MAX_TOTAL_ANALYSED = 300_000  # all of a submission's code cells: ~5x the course's largest chapter
ANALYSIS_SECONDS = 0.5  # CPU time of the grading thread for the whole analysis (the course needs < 0.05 s)


def is_demo(cell) -> bool:
    """Whether a course notebook's cell is tagged as a demonstration."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return cell.get("cell_type") == "code" and isinstance(tags, list) and DEMO_TAG in tags


def normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


@lru_cache(maxsize=None)
def course_demo_sources(chapter: str) -> frozenset[str]:
    """The texts of the demonstration cells of `chapter`'s notebook in course/ (the grader's copy)."""
    from autograder.instructor import notebooks

    notebook = notebooks.read(notebooks.chapter_notebook(chapter))
    return frozenset(normalized(cell.source) for cell in notebook.cells if is_demo(cell))


@dataclass(frozen=True)
class Names:
    binds: frozenset[str]  # names the cell binds in the notebook's namespace
    reads: frozenset[str]  # names it reads there before binding them itself (also from inside its functions)
    unknown: bool  # it binds or reads names the analysis cannot list (a star import, `globals()`, ...)


UNKNOWN = Names(frozenset(), frozenset(), True)


class _OutOfTime(BaseException):
    """The analysis ran past ANALYSIS_SECONDS. Not an Exception, so that no handler on its way (ours, IPython's)
    takes it for a failure of one cell, and lru_cache keeps no result for the cell it interrupted."""


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("demo_analysis_deadline", default=None)


@contextmanager
def _time_limit():
    """ANALYSIS_SECONDS of this thread's CPU time (not wall time: how busy the machine is does not change what
    is skipped), unless a limit already runs (cells_to_skip's, for all of a submission's cells)."""
    if _DEADLINE.get() is not None:
        yield
        return
    token = _DEADLINE.set(time.thread_time() + ANALYSIS_SECONDS)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _check_time():
    deadline = _DEADLINE.get()
    if deadline is not None and time.thread_time() > deadline:
        raise _OutOfTime


@lru_cache(maxsize=None)
def _transformer():
    """IPython's cell transformer, imported before any clock starts (the import takes about a second), that
    checks the clock before each pass: every `%magic`, `!command` or `name?` it rewrites is one more pass of
    its tokenizer over the whole cell."""
    from IPython.core.inputtransformer2 import TransformerManager

    class Timed(TransformerManager):
        def do_one_token_transform(self, lines):
            _check_time()
            return super().do_one_token_transform(lines)

    return Timed


def cell_names(source: str) -> Names:
    """What a code cell binds and reads in the notebook's namespace, as IPython would run it; `UNKNOWN` for a
    cell the analysis does not take on (not text, over MAX_ANALYSED_CHARS, nested too deep, out of time)."""
    if not isinstance(source, str) or len(source) > MAX_ANALYSED_CHARS:
        return UNKNOWN  # checked before the cache, which so never holds a long text
    _transformer()
    try:
        with _time_limit():
            return _cell_names(source)
    except _OutOfTime:
        return UNKNOWN  # not cached: another time, on its own, it may be analysed


@lru_cache(maxsize=4096)
def _cell_names(source: str) -> Names:
    try:
        code = _transformer()().transform_cell(source)
    except Exception:  # noqa: BLE001 - whatever IPython makes of learner text, the cell keeps every demonstration
        return UNKNOWN
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return Names(frozenset(), frozenset(), False)  # it never runs: Python stops at the syntax error
    except Exception:  # noqa: BLE001 - MemoryError, RecursionError (nested too deep), ValueError (a NUL, ...)
        return UNKNOWN
    try:
        return _names(tree)
    except Exception:  # noqa: BLE001 - RecursionError, MemoryError in ast.unparse, symtable, ...
        return UNKNOWN


def _names(tree: ast.Module) -> Names:
    binds, reads = set(), set()
    unknown = any(isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
                  for node in ast.walk(tree))
    for piece in (piece for statement in tree.body for piece in _pieces(statement)):
        _check_time()
        try:
            read, bound = _scope(symtable.symtable(ast.unparse(piece), "<cell>", "exec"))
        except (SyntaxError, ValueError, RecursionError):
            return Names(frozenset(binds), frozenset(reads), True)
        reads |= read - binds
        binds |= bound
    unknown |= bool((reads | binds) & DYNAMIC)
    return Names(frozenset(binds), frozenset(reads), unknown)


def _assign(target: ast.expr) -> ast.stmt:
    return ast.Assign(targets=[target], value=ast.Constant(None), lineno=0)


def _pieces(node: ast.stmt):
    """A module-level statement as the pieces it runs in order, compound statements opened up: `for x in
    xs: f(x)` reads xs, binds x, then reads x, so x is not read from the namespace. A name bound in one
    branch of an `if` counts as bound after it."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        yield ast.Expr(node.iter)
        yield _assign(node.target)
        body = node.body + node.orelse
    elif isinstance(node, (ast.While, ast.If)):
        yield ast.Expr(node.test)
        body = node.body + node.orelse
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            yield ast.Expr(item.context_expr)
            if item.optional_vars is not None:
                yield _assign(item.optional_vars)
        body = node.body
    elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
        body = list(node.body)
        for handler in node.handlers:
            body += [ast.Expr(handler.type)] if handler.type is not None else []
            body += [_assign(ast.Name(handler.name, ast.Store()))] if handler.name else []
            body += handler.body
        body += node.orelse + node.finalbody
    else:
        yield node
        return
    for statement in body:
        yield from _pieces(statement)


def _scope(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    """(names read, names bound) at the module level by the code of `table` and its nested scopes."""
    reads, binds = set(), set()
    module = table.get_type() == "module"
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if module or symbol.is_global():
            if symbol.is_referenced():
                reads.add(name)
            if (module or symbol.is_declared_global()) and (symbol.is_assigned() or symbol.is_imported()):
                binds.add(name)
    for child in table.get_children():
        child_reads, child_binds = _scope(child)
        reads |= child_reads
        binds |= child_binds
    return reads, binds


def cells_to_skip(cells: list[dict], chapter: str, needed: set[str]) -> set[int]:
    """The indices of the cells (`{"index", "source"}`, as grading runs them) that grading leaves out: the
    course's demonstration cells, unchanged, that bind nothing a running cell reads and none of `needed`
    (the graded exercises' names). Nothing, and never an exception, for a submission the analysis does not
    take on whole: a source that is not text, more than MAX_TOTAL_ANALYSED characters, a cell it cannot see
    through, more than ANALYSIS_SECONDS."""
    try:
        sources = [cell["source"] for cell in cells]
        if not all(isinstance(source, str) for source in sources) or sum(map(len, sources)) > MAX_TOTAL_ANALYSED:
            return set()
        demos = course_demo_sources(chapter)
        candidates = {cell["index"] for cell in cells if normalized(cell["source"]) in demos}
        if not candidates:
            return set()
        _transformer()
        with _time_limit():
            return _skippable(cells, candidates, set(needed))
    except (Exception, _OutOfTime):  # noqa: BLE001 - learner input: skipping nothing is always safe
        return set()


def _skippable(cells: list[dict], candidates: set, needed: set[str]) -> set:
    names = {}
    for cell in cells:
        found = cell_names(cell["source"])
        if found.unknown:
            return set()  # code the analysis cannot see through (or too much of it) keeps every demonstration
        names[cell["index"]] = found
    for index, found in names.items():
        if index not in candidates:
            needed |= found.reads
    skip = set(candidates)
    changed = True
    while changed:
        _check_time()
        changed = False
        for index in sorted(skip):
            found = names[index]
            if found.binds & needed:
                skip.discard(index)
                needed |= found.reads
                changed = True
    return skip
