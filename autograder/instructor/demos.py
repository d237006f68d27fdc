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
"""
from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass
from functools import lru_cache

DEMO_TAG = "demo"
# Names through which code reads the namespace without naming what it reads: a running cell that uses
# one keeps every demonstration.
DYNAMIC = frozenset({"eval", "exec", "globals", "locals", "vars", "dir", "get_ipython", "__builtins__", "__main__",
                     "__import__", "builtins"})


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


@lru_cache(maxsize=4096)
def cell_names(source: str) -> Names:
    """What a code cell binds and reads in the notebook's namespace, as IPython would run it."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return Names(frozenset(), frozenset(), False)  # it never runs: IPython stops at the syntax error
    binds, reads = set(), set()
    unknown = any(isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
                  for node in ast.walk(tree))
    for piece in (piece for statement in tree.body for piece in _pieces(statement)):
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
    (the graded exercises' names)."""
    demos = course_demo_sources(chapter)
    candidates = {cell["index"] for cell in cells if normalized(cell["source"]) in demos}
    if not candidates:
        return set()
    names = {cell["index"]: cell_names(cell["source"]) for cell in cells}
    needed = set(needed)
    for index, found in names.items():
        if index not in candidates:
            if found.unknown:
                return set()
            needed |= found.reads
    skip = set(candidates)
    changed = True
    while changed:
        changed = False
        for index in sorted(skip):
            found = names[index]
            if found.unknown or found.binds & needed:
                if found.unknown:
                    return set()
                skip.discard(index)
                needed |= found.reads
                changed = True
    return skip
