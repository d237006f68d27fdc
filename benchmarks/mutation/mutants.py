"""Mutants of a reference: one small change each, inside its `### BEGIN SOLUTION` / `### END SOLUTION` region.

`mutants_of(reference)` parses the source of a function or a class from `solutions/`, finds the
solution regions (a class has one in each method the learner writes), and makes one mutant per
change a rule proposes for a node inside a region: an operator or comparison swapped, a constant
moved by one, an axis changed, a statement dropped, a slice bound or an index off by one, a unary
operator removed or a minus added, `and`/`or`, `min`/`max`, `mean`/`sum` exchanged. Mutants whose
code reads the same as another's, or as the reference's, are left out.

A mutant keeps the whole definition, changed, compiled with the line numbers of the solution's
file. `Mutant.build()` runs that definition in a copy of the reference module's namespace, so the
mutant sees the module's imports and helpers under their own names, and a class's other methods
(which make new instances by the class's name, as `Value.__mul__` does) build instances of the
mutated class.
"""
from __future__ import annotations

import ast
import collections
import copy
import dataclasses
import inspect
import textwrap
from typing import Callable, Iterator

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SHOWN_CHARS = 60  # longest source fragment shown in a mutant's description

BINARY_SWAPS = {ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,), ast.Div: (ast.Mult, ast.FloorDiv),
                ast.FloorDiv: (ast.Div,), ast.Mod: (ast.FloorDiv,), ast.Pow: (ast.Mult,), ast.MatMult: (ast.Mult,),
                ast.BitAnd: (ast.BitOr,), ast.BitOr: (ast.BitAnd,)}
COMPARISON_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
           ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
           ast.And: "and", ast.Or: "or"}
CONSTANT_SPECIALS = {0: 1, 1: 0, 2: 1, 0.5: 1}  # besides ±1
FUNCTION_SWAPS = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "argmin": "argmax",
                  "argmax": "argmin", "amin": "amax", "amax": "amin", "mean": "sum", "sum": "mean"}
BUILTIN_SWAPS = {"min": "max", "max": "min"}  # called by bare name: Python has no builtin mean
NOT_NUMBERS = (ast.List, ast.ListComp, ast.Dict, ast.DictComp, ast.Set, ast.SetComp, ast.Lambda, ast.JoinedStr,
               ast.Compare, ast.BoolOp, ast.GeneratorExp)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A reference with one change: where (a line of the solution's file), what, and its compiled code."""

    reference: Callable
    line: int
    change: str  # "'<' -> '<='"
    code: object  # the whole changed definition, compiled
    column: int = 1  # where on the line the changed node starts, counting from 1 as editors do

    @property
    def description(self) -> str:
        return f"line {self.line}: {self.change}"

    def build(self) -> Callable:
        """The mutated function or class, defined in a copy of the reference module's namespace."""
        namespace = dict(vars(inspect.getmodule(self.reference)))
        exec(self.code, namespace)
        return namespace[self.reference.__name__]


def mutants_of(reference: Callable) -> list[Mutant]:
    """Every distinct mutant of `reference`'s solution regions, in the order of their lines."""
    source_lines, first_line = inspect.getsourcelines(reference)
    tree = ast.parse(textwrap.dedent("".join(source_lines)))
    ast.increment_lineno(tree, first_line - 1)
    regions = solution_regions(source_lines, first_line)
    filename = f"<mutant of {reference.__module__}.{reference.__qualname__}>"
    parents = parent_slots(tree)
    seen = {ast.unparse(tree)}
    mutants = []
    for node in list(mutable_nodes(tree, regions)):
        for change, replacement in changes(node):
            with swapped_in(parents[node], replacement):
                text = ast.unparse(tree)
                code = compiled(tree, filename) if text not in seen else None
            if code is not None:
                seen.add(text)
                mutants.append(Mutant(reference, node.lineno, change, code, node.col_offset + 1))
    return sorted(told_apart_by_column(mutants), key=lambda mutant: mutant.line)


def told_apart_by_column(mutants: list[Mutant]) -> list[Mutant]:
    """The mutants, those that would read alike (the same change on the same line) with their column in the change."""
    alike = collections.Counter((mutant.line, mutant.change) for mutant in mutants)
    return [dataclasses.replace(mutant, change=f"{mutant.change} at column {mutant.column}")
            if alike[mutant.line, mutant.change] > 1 else mutant for mutant in mutants]


def solution_regions(source_lines: list[str], first_line: int) -> list[tuple[int, int]]:
    """(begin, end) file line numbers of each `### BEGIN SOLUTION` ... `### END SOLUTION` pair."""
    begins = [first_line + i for i, line in enumerate(source_lines) if line.strip() == BEGIN]
    ends = [first_line + i for i, line in enumerate(source_lines) if line.strip() == END]
    if len(begins) != len(ends) or any(begin >= end for begin, end in zip(begins, ends)):
        raise ValueError(f"unmatched solution markers in lines {begins} and {ends}")
    return list(zip(begins, ends))


def mutable_nodes(tree: ast.AST, regions: list[tuple[int, int]]) -> Iterator[ast.AST]:
    """The nodes lying wholly inside a solution region, outside f-strings (whose text is only a message)."""
    in_fstrings = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for inner in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in in_fstrings or not hasattr(node, "lineno"):
            continue
        if any(begin < node.lineno and node.end_lineno < end for begin, end in regions):
            yield node


def parent_slots(tree: ast.AST) -> dict[ast.AST, tuple[ast.AST, str, int | None]]:
    """For every node: its parent, the parent's field that holds it, and its index there when that field is a list."""
    slots = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                slots[value] = (parent, field, None)
            elif isinstance(value, list):
                slots.update({item: (parent, field, i) for i, item in enumerate(value) if isinstance(item, ast.AST)})
    return slots


class swapped_in:
    """Context manager: `replacement` stands in its parent's slot while the block runs, then the original again."""

    def __init__(self, slot: tuple[ast.AST, str, int | None], replacement: ast.AST):
        self.parent, self.field, self.index = slot
        self.replacement = replacement

    def _put(self, node: ast.AST) -> ast.AST:
        holder = getattr(self.parent, self.field)
        if self.index is None:
            setattr(self.parent, self.field, node)
            return holder
        previous, holder[self.index] = holder[self.index], node
        return previous

    def __enter__(self):
        self.original = self._put(self.replacement)

    def __exit__(self, *exc_info):
        self._put(self.original)


def compiled(tree: ast.Module, filename: str):
    """The code of `tree`, or None when the change made it invalid Python."""
    try:
        return compile(ast.fix_missing_locations(tree), filename, "exec")
    except (SyntaxError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------- the rules

def changes(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(description, replacement node) for every change the rules propose for `node`; the node itself stays as it is."""
    for rule in RULES:
        for change, replacement in rule(node):
            yield change, ast.copy_location(replacement, node)


def with_fields(node: ast.AST, **fields) -> ast.AST:
    """A shallow copy of `node` with some fields replaced (the children it shares are never changed)."""
    new = copy.copy(node)
    for name, value in fields.items():
        setattr(new, name, value)
    return new


def shown(node: ast.AST) -> str:
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def described(old: ast.AST, new: ast.AST) -> str:
    return f"'{shown(old)}' -> '{shown(new)}'"


def plus(node: ast.expr, amount: int) -> ast.expr:
    """`node + 1` or `node - 1`."""
    return ast.BinOp(node, ast.Add() if amount > 0 else ast.Sub(), ast.Constant(abs(amount)))


def operator_swaps(node):
    """`+` <-> `-`, `*` <-> `/`, `/` -> `//`, `**` -> `*`, `@` -> `*`, `&` <-> `|`, also in `+=` and the like."""
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        for swapped in BINARY_SWAPS.get(type(node.op), ()):
            yield f"'{SYMBOLS[type(node.op)]}' -> '{SYMBOLS[swapped]}'", with_fields(node, op=swapped())


def comparison_swaps(node):
    """`<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`, `is` <-> `is not`, `in` <-> `not in`, one comparison at a time."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swapped = COMPARISON_SWAPS[type(op)]
            ops = node.ops[:i] + [swapped()] + node.ops[i + 1:]
            yield f"'{SYMBOLS[type(op)]}' -> '{SYMBOLS[swapped]}'", with_fields(node, ops=ops)


def constant_changes(node):
    """A number moved by ±1 (and 0 -> 1, 1 -> 0, 2 -> 1, 0.5 -> 1); True <-> False."""
    if not isinstance(node, ast.Constant):
        return
    value = node.value
    if isinstance(value, bool):
        yield f"'{value}' -> '{not value}'", ast.Constant(not value)
    elif isinstance(value, (int, float)):
        candidates = [value + 1, value - 1] + ([CONSTANT_SPECIALS[value]] if value in CONSTANT_SPECIALS else [])
        for new in dict.fromkeys(candidates):
            if new != value:
                yield f"'{value!r}' -> '{new!r}'", ast.Constant(new)


def keyword_changes(node):
    """In a call: axis=0 <-> axis=1, axis removed; keepdims toggled or removed."""
    if not isinstance(node, ast.Call):
        return
    for i, keyword in enumerate(node.keywords):
        others = node.keywords[:i] + node.keywords[i + 1:]
        value = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
        if keyword.arg == "axis" and value in (0, 1) and not isinstance(value, bool):
            moved = ast.keyword("axis", ast.Constant(1 - value))
            yield f"'axis={value}' -> 'axis={1 - value}'", with_fields(node, keywords=others[:i] + [moved] + others[i:])
        if keyword.arg in ("axis", "keepdims"):
            yield f"'{shown(keyword)}' -> (removed)", with_fields(node, keywords=others)
        if keyword.arg == "keepdims" and isinstance(value, bool):
            toggled = ast.keyword("keepdims", ast.Constant(not value))
            yield f"'keepdims={value}' -> 'keepdims={not value}'", \
                with_fields(node, keywords=others[:i] + [toggled] + others[i:])


def function_swaps(node):
    """`min` <-> `max` (also np.minimum/np.maximum, argmin/argmax), `mean` <-> `sum`, as functions or methods."""
    if not isinstance(node, ast.Call):
        return
    func = node.func
    if isinstance(func, ast.Name) and func.id in BUILTIN_SWAPS:
        new_func = with_fields(func, id=BUILTIN_SWAPS[func.id])
    elif isinstance(func, ast.Attribute) and func.attr in FUNCTION_SWAPS:
        new_func = with_fields(func, attr=FUNCTION_SWAPS[func.attr])
    else:
        return
    yield described(func, new_func), with_fields(node, func=new_func)


def statement_drops(node):
    """A statement replaced by `pass`."""
    if isinstance(node, ast.stmt) and not isinstance(node, ast.Pass):
        yield f"'{shown(node)}' -> 'pass'", ast.Pass()


def off_by_one_subscripts(node):
    """a[:k] -> a[:k - 1] / a[:k + 1] (either bound of a slice, when not a plain number), a[i] -> a[i + 1]."""
    if not isinstance(node, ast.Subscript):
        return
    index = node.slice
    if isinstance(index, ast.Slice):
        for bound in ("lower", "upper"):
            value = getattr(index, bound)
            if value is not None and not isinstance(value, ast.Constant):
                for amount in (-1, 1):
                    new = with_fields(node, slice=with_fields(index, **{bound: plus(value, amount)}))
                    yield described(node, new), new
    elif isinstance(index, ast.Tuple):
        for i, element in enumerate(index.elts):
            if is_plain_index(element):
                elements = index.elts[:i] + [plus(element, 1)] + index.elts[i + 1:]
                new = with_fields(node, slice=with_fields(index, elts=elements))
                yield described(node, new), new
    elif is_plain_index(index):
        new = with_fields(node, slice=plus(index, 1))
        yield described(node, new), new


def is_plain_index(node: ast.AST) -> bool:
    """An index computed at run time (a name, an attribute, a call, arithmetic), not a literal or a slice."""
    return isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.BinOp, ast.Subscript))


def unary_removals(node):
    """-x -> x, not x -> x, ~x -> x."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not, ast.Invert)):
        yield described(node, node.operand), with_fields(node.operand)


def minus_additions(node):
    """A minus added to what a statement assigns or returns (each returned value apart): the classic sign bug."""
    if isinstance(node, ast.Return) and node.value is not None:
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        for i, value in enumerate(values):
            if not is_number_like(value):
                continue
            negated = ast.UnaryOp(ast.USub(), value)
            new_value = (with_fields(node.value, elts=values[:i] + [negated] + values[i + 1:])
                         if isinstance(node.value, ast.Tuple) else negated)
            yield described(value, negated), with_fields(node, value=new_value)
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and not isinstance(node.targets[0], ast.Tuple) \
            and is_number_like(node.value):
        negated = ast.UnaryOp(ast.USub(), node.value)
        yield described(node.value, negated), with_fields(node, value=negated)


def is_number_like(node: ast.AST) -> bool:
    """Whether a minus in front of this expression could make sense: not a container, a comparison or a text,
    nor a literal (the constant rule moves those) or an expression that already has a unary operator."""
    return not isinstance(node, NOT_NUMBERS + (ast.Constant, ast.UnaryOp, ast.Tuple))


def boolean_swaps(node):
    """`and` <-> `or`."""
    if isinstance(node, ast.BoolOp):
        swapped = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield f"'{SYMBOLS[type(node.op)]}' -> '{SYMBOLS[swapped]}'", with_fields(node, op=swapped())


RULES = (operator_swaps, comparison_swaps, constant_changes, keyword_changes, function_swaps, statement_drops,
         off_by_one_subscripts, unary_removals, minus_additions, boolean_swaps)
