"""Mutants of the grading code itself: does the suite fail a small change to the code that decides and keeps grades?

    python -m benchmarks.mutation.grading_code [--module NAME ...] [--sample N] [--seed S] [--workers N]
                                               [--results FILE] [--fresh]

Each mutant is one change the exercise mutation's rules propose (`mutants.changes`: an operator or
comparison swapped, a constant moved, a statement dropped, `and`/`or`, ...) to one node of a module of
`autograder/learner/` or `autograder/instructor/` (the exercises' references excluded: they have
their own mutation run), docstrings and type annotations left alone. A mutant is killed when the tests
fail (or run past their time) with it in place, and survives when they pass.

How every mutant is run in hours rather than days, without a shortcut turning a kill into a survivor:

1. Two scratch copies of the last commit (`git archive HEAD`; the working tree is never touched), with each
   module written as `ast.unparse` writes it, as its mutants are: the unchanged module so written is the baseline.
2. One traced run of every test file in `MODULES` under coverage, each test's node id as the context: which tests
   execute each statement, and how long each test takes. A test that fails in the baseline stops the run.
3. Each mutant runs only the tests that execute its statement, fastest first, stopping at the first failure, in a
   child forked from a process that imported torch, numpy, hypothesis and pytest once (`forked_pytest`). A
   statement executed outside every test (at import, while collecting, or only in a sandbox's own process) gets
   the module's whole list of test files.
4. A survivor of step 3 runs again against the module's whole list: that second verdict is the one reported, so
   the selection only ever saves time.
5. Each test that killed a mutant runs once more on the baseline: a test that fails there too is flaky, and the
   mutants it killed run again.

Every verdict is appended to `--results` (JSON lines, keyed by a hash of the mutant's source); a later run takes
the kills recorded for mutants of an unchanged module from there and runs every survivor again, so a run can be
spread over several sessions. A survivor named in `equivalent.EQUIVALENT` is counted apart, with its reason:
the kill rate is killed / (mutants - equivalent).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.mutation.equivalent import EQUIVALENT
from benchmarks.mutation.forked_pytest import Outcome, Preloaded, collects, outcome, traced
from benchmarks.mutation.mutants import changes, parent_slots, swapped_in

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("grading_code_results.jsonl")
MODULES = {  # module -> the test files that reach it (the whole list a survivor is run against)
    "learner/judge.py": ["test_grading_code.py", "test_check_messages.py", "test_soundness.py"],
    "learner/compare.py": ["test_compare.py", "test_check_messages.py", "test_grading_code.py"],
    "learner/protocol.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_sandbox.py"],
    "learner/registry.py": ["test_grading_code.py", "test_check_messages.py", "test_bundle.py"],
    "learner/stored.py": ["test_bundle.py", "test_grading_code.py"],
    "learner/check.py": ["test_check_messages.py", "test_grading_code.py", "test_forbidden.py"],
    "learner/forbidden.py": ["test_forbidden.py", "test_soundness.py"],
    "learner/in_sandbox.py": ["test_grading_code.py", "test_sandbox.py", "test_grading_untrusted.py"],
    "instructor/grading.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_soundness.py"],
    "instructor/intake.py": ["test_intake.py", "test_grading_code.py", "test_grading_exports.py"],
    "instructor/results.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_reports.py"],
    "instructor/reports.py": ["test_reports.py", "test_grading_code.py", "test_grading_exports.py"],
    "instructor/sandbox.py": ["test_sandbox.py", "test_sandbox_syscalls.py"],
    "instructor/isolation.py": ["test_sandbox.py", "test_sandbox_syscalls.py"],
    "instructor/confine.py": ["test_sandbox.py"],
    "instructor/hidden_feedback.py": ["test_grading_code.py", "test_grading_untrusted.py"],
}
KILLED, TIMED_OUT, SURVIVED = "killed", "timed out", "survived"


@dataclass(frozen=True)
class GradingMutant:
    module: str
    line: int  # in the module as committed
    column: int
    statement_line: int  # the line of the enclosing statement in the module as `ast.unparse` writes it
    change: str
    source: str  # the whole module, changed, as `ast.unparse` writes it

    @property
    def key(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:20]


def committed(module: str) -> str:
    return subprocess.run(["git", "show", f"HEAD:autograder/{module}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def is_docstring(node: ast.AST, parents: dict) -> bool:
    slot = parents.get(node)
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) \
        and slot is not None and slot[1] == "body" and slot[2] == 0


def is_future_import(node: ast.AST) -> bool:
    """`from __future__ import annotations`: without it the annotations are evaluated once, at definition, and
    name what exists, so dropping it changes nothing a test can see."""
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def annotations(tree: ast.AST) -> set[ast.AST]:
    """Every node inside a type annotation: never evaluated (`from __future__ import annotations`), so a change
    there is equivalent."""
    inside = set()
    for node in ast.walk(tree):
        for field in ("annotation", "returns"):
            if getattr(node, field, None) is not None:
                inside |= set(ast.walk(getattr(node, field)))
    return inside


def statement_lines(tree: ast.AST) -> dict[ast.AST, int]:
    """For each statement of `tree`: its line in `ast.unparse(tree)`, found by walking the tree parsed back from
    that text beside `tree` (the two have the same shape)."""
    again = ast.parse(ast.unparse(tree))
    return {node: twin.lineno for node, twin in zip(ast.walk(tree), ast.walk(again)) if isinstance(node, ast.stmt)}


def mutants_of(module: str, source: str | None = None) -> list[GradingMutant]:
    """Every mutant of `module` (a path under autograder/; its committed text unless `source` is given)."""
    tree = ast.parse(committed(module) if source is None else source)
    parents, unevaluated, lines = parent_slots(tree), annotations(tree), statement_lines(tree)
    found, seen = [], {ast.unparse(tree)}
    for node in list(ast.walk(tree)):
        if node not in parents or node in unevaluated or is_docstring(node, parents) or is_future_import(node) or \
                isinstance(node, (ast.arg, ast.arguments)):
            continue
        statement = node
        while not isinstance(statement, ast.stmt):
            statement = parents[statement][0]
        for change, replacement in changes(node):
            with swapped_in(parents[node], replacement):
                mutated = ast.unparse(tree)
            if mutated not in seen:
                seen.add(mutated)
                found.append(GradingMutant(module, getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                                           lines[statement], change, mutated))
    return found


def scratch_copy(unparsed: dict[str, str]) -> Path:
    """The last commit's files in a temporary folder, with each module of `unparsed` written as given."""
    scratch = Path(tempfile.mkdtemp(prefix="nncourse-mutants-"))
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    for module, text in unparsed.items():
        (scratch / "autograder" / module).write_text(text)
    return scratch


@dataclass
class Trace:
    """What the traced baseline run found: the tests that execute each line of each module, each test's seconds,
    and for a test that set up a fixture wider than a function, every test that uses that fixture."""

    lines: dict[str, dict[str, list[str]]]
    seconds: dict[str, float]
    shared: dict[str, list[str]]

    def tests_for(self, mutant: GradingMutant) -> list[str] | None:
        """The node ids of the tests that execute the mutant's statement, fastest first; None when something
        outside every test executes it too (or nothing executes it in the test process)."""
        contexts = self.lines.get(mutant.module, {}).get(str(mutant.statement_line), [])
        if not contexts or "" in contexts:
            return None
        tests = set(contexts).union(*(self.shared.get(test, ()) for test in contexts))
        return sorted(tests, key=lambda test: (self.seconds.get(test, 0.0), test))

    def tests_in(self, files: list[str]) -> list[str]:
        """Every test the traced run ran from `files`, fastest first."""
        return sorted((test for test in self.seconds if test.split("::")[0] in files),
                      key=lambda test: (self.seconds[test], test))

    def time_for(self, tests: list[str]) -> float:
        """A run's time limit: ten times the tests' traced time, and a minute more (a loop the mutant makes endless
        is a kill; a slow machine is not)."""
        return 60 + 10 * sum(self.seconds.get(test, 0.0) for test in tests)


class Runner:
    """Runs mutants in scratch copies, `workers` at a time, each in a child forked from one preloaded process."""

    def __init__(self, unparsed: dict[str, str], workers: int):
        self.preloaded = Preloaded()
        self.scratches = [scratch_copy(unparsed) for _ in range(workers)]
        self.logs = Path(tempfile.mkdtemp(prefix="nncourse-mutant-logs-"))
        self.running: dict[int, tuple] = {}

    def close(self):
        """Stop every child still running (a run interrupted), and remove the scratch copies."""
        for pid in self.running:
            self.preloaded.stop(pid)
        for scratch in self.scratches:
            shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self.logs, ignore_errors=True)

    def trace(self, modules: list[str]) -> Trace:
        files = sorted({f"tests/{name}" for module in modules for name in MODULES[module]})
        found = traced(self.preloaded, self.scratches[0], files, "autograder", self.logs / "trace.json", 3600)
        if found["failed"]:
            raise RuntimeError(f"tests fail with the modules as ast.unparse writes them, before any mutant: "
                               f"{found['failed']}; see {self.logs / 'trace.log'}")
        if not collects(self.preloaded, self.scratches[0], sorted(found["seconds"]), self.logs / "collect.log"):
            raise RuntimeError(f"pytest does not find the traced tests by their node ids: {self.logs / 'collect.log'}")
        return Trace(found["lines"], found["seconds"], found["shared"])

    def run_all(self, jobs: list[tuple[GradingMutant, list[str], float]], done_with, order=lambda mutant, tests: tests):
        """Run each (mutant, tests, timeout), one per scratch copy at a time, the tests in the order `order` gives
        as the job starts, and call done_with(job, outcome) as each one ends (so that an interrupted run keeps what
        it found)."""
        free, running, queue = list(range(len(self.scratches))), self.running, list(enumerate(jobs))
        while queue or running:
            while queue and free:
                index, (mutant, tests, timeout) = queue.pop(0)
                slot = free.pop()
                path = self.scratches[slot] / "autograder" / mutant.module
                original = path.read_text()
                path.write_text(mutant.source)
                log = self.logs / f"{slot}.log"
                running[self.preloaded.start(self.scratches[slot], order(mutant, tests), log)] = \
                    (index, slot, path, original, log, time.monotonic(), timeout)
            time.sleep(0.05)
            for pid, (index, slot, path, original, log, start, timeout) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done and time.monotonic() - start <= timeout:
                    continue
                if done:
                    result = outcome(os.waitstatus_to_exitcode(status), log, time.monotonic() - start)
                else:
                    self.preloaded.stop(pid)
                    result = Outcome(True, True, None, time.monotonic() - start)
                path.write_text(original)
                del running[pid]
                free.append(slot)
                done_with(jobs[index], result)

    def flaky(self, tests: set[str], trace: Trace) -> set[str]:
        """The tests among `tests` that fail on the baseline, each run alone (or that cannot be run by the node id
        pytest printed: then their kills are checked again too)."""
        found = set()
        for test in sorted(tests):
            try:
                result = self.preloaded.run(self.scratches[0], [test], trace.time_for([test]),
                                            self.logs / "flaky.log")
            except RuntimeError:
                found.add(test)
                continue
            if result.failed:
                found.add(test)
        return found


def recorded(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    verdicts = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            verdicts[entry["key"]] = entry
    return verdicts


def equivalence_reason(mutant: GradingMutant, committed_lines: list[str]) -> str | None:
    text = committed_lines[mutant.line - 1].strip() if 0 < mutant.line <= len(committed_lines) else ""
    return EQUIVALENT.get((mutant.module, text, mutant.change))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES))
    parser.add_argument("--sample", type=int, default=0, help="at most this many mutants per module (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON lines, one verdict each, appended")
    parser.add_argument("--fresh", action="store_true", help="run every mutant, ignoring recorded kills")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # so that `finally` stops the children
    modules = options.module or sorted(MODULES)
    start, rng = time.monotonic(), random.Random(options.seed)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    sources = {module: committed(module) for module in MODULES}
    unparsed = {module: ast.unparse(ast.parse(text)) for module, text in sources.items()}
    known = {} if options.fresh else recorded(options.results)
    runner = Runner(unparsed, options.workers)
    try:
        trace = runner.trace(modules)
        print(f"traced the baseline: {len(trace.seconds)} tests, {sum(trace.seconds.values()):.0f} s", flush=True)
        chosen = {}
        for module in modules:
            mutants = mutants_of(module, sources[module])
            chosen[module] = sorted(rng.sample(mutants, min(options.sample, len(mutants))) if options.sample
                                    else mutants, key=lambda m: (m.line, m.column))
            print(f"-- {module}: {len(chosen[module])} of {len(mutants)} mutants", flush=True)
        verdicts = run_modules(runner, trace, chosen, known, options.results, head.strip())
    finally:
        runner.close()
    print_summary(chosen, verdicts, sources, time.monotonic() - start)


def run_modules(runner: Runner, trace: Trace, chosen: dict, known: dict, results: Path, head: str) -> dict:
    """Every chosen mutant's verdict ({key: entry}), kills recorded for the same mutant taken from `known`."""
    verdicts, whole, recent_killers, new_killers = {}, {}, defaultdict(list), set()
    fresh = [m for mutants in chosen.values() for m in mutants
             if known.get(m.key, {}).get("verdict") not in (KILLED, TIMED_OUT)]
    verdicts.update({m.key: known[m.key] for mutants in chosen.values() for m in mutants if m.key in known
                     and known[m.key]["verdict"] in (KILLED, TIMED_OUT)})

    def record(mutant, result: Outcome, stage: str):
        verdict = TIMED_OUT if result.timed_out else KILLED if result.failed else SURVIVED
        entry = {**{k: v for k, v in asdict(mutant).items() if k != "source"}, "key": mutant.key, "verdict": verdict,
                 "by": result.first_failure, "stage": stage, "seconds": round(result.seconds, 1), "head": head}
        verdicts[mutant.key] = entry
        if verdict == KILLED and result.first_failure:
            new_killers.add(result.first_failure)
            killers = recent_killers[mutant.module]
            killers[:] = [result.first_failure] + [test for test in killers if test != result.first_failure][:19]
        with results.open("a") as out:
            out.write(json.dumps(entry) + "\n")
        print(f"{verdict:9} {mutant.module}:{mutant.line}: {mutant.change}  [{stage}, {result.seconds:.1f} s"
              + (f", {result.first_failure}" if result.first_failure else "") + "]", flush=True)

    lists = {module: trace.tests_in([f"tests/{name}" for name in MODULES[module]]) for module in chosen}

    def whole_list(mutant):
        return mutant, lists[mutant.module], trace.time_for(lists[mutant.module])

    def first_verdict(job, result):
        mutant, tests, _ = job
        if tests is lists[mutant.module] or (result.failed and not result.timed_out):
            record(mutant, result, "whole list" if tests is lists[mutant.module] else "selected tests")
        else:  # survived the selection, or ran past its time there
            whole[mutant.key] = mutant

    def killers_first(mutant, tests):
        """The tests that killed the module's last mutants first (a mutant's neighbours often fall to the same
        test), then the others, fastest first."""
        chosen = set(tests)
        first = [test for test in recent_killers[mutant.module] if test in chosen]
        return first + [test for test in tests if test not in set(first)]

    for module in chosen:  # module by module, so that each module's figures are final as soon as it is done
        jobs = []
        for mutant in (m for m in fresh if m.module == module):
            tests = trace.tests_for(mutant)
            jobs.append((mutant, tests, trace.time_for(tests)) if tests else whole_list(mutant))
        whole.clear()
        runner.run_all(jobs, first_verdict, killers_first)
        runner.run_all([whole_list(m) for m in whole.values()],
                       lambda job, result: record(job[0], result, "whole list"), killers_first)
    flaky = runner.flaky(new_killers, trace)
    if flaky:
        print(f"flaky on the baseline, their kills run again: {sorted(flaky)}", flush=True)
        suspect = [m for mutants in chosen.values() for m in mutants if verdicts[m.key].get("by") in flaky]
        runner.run_all([whole_list(m) for m in suspect],
                       lambda job, result: record(job[0], result, "again, a flaky killer"))
    return verdicts


def print_summary(chosen: dict, verdicts: dict, sources: dict, seconds: float) -> None:
    """Per module: mutants, killed (timed out among them), equivalent survivors, other survivors, the kill rate;
    then every survivor with its line and change, and the reason of each equivalent one."""
    print(f"\n{'module':32} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'surv.':>6} {'rate':>6}")
    totals = defaultdict(int)
    survivors = []
    for module, mutants in chosen.items():
        lines = sources[module].splitlines()
        killed = sum(verdicts[m.key]["verdict"] != SURVIVED for m in mutants)
        equivalent = [(m, equivalence_reason(m, lines)) for m in mutants if verdicts[m.key]["verdict"] == SURVIVED]
        others = [m for m, reason in equivalent if reason is None]
        equivalent = [(m, reason) for m, reason in equivalent if reason is not None]
        rate = killed / max(len(mutants) - len(equivalent), 1)
        print(f"{module:32} {len(mutants):7} {killed:7} {len(equivalent):7} {len(others):6} {rate:6.1%}")
        for name, value in (("mutants", len(mutants)), ("killed", killed), ("equivalent", len(equivalent))):
            totals[name] += value
        survivors += [(m, None) for m in others] + equivalent
    rate = totals["killed"] / max(totals["mutants"] - totals["equivalent"], 1)
    print(f"{'all':32} {totals['mutants']:7} {totals['killed']:7} {totals['equivalent']:7} "
          f"{totals['mutants'] - totals['killed'] - totals['equivalent']:6} {rate:6.1%}   ({seconds:.0f} s)")
    for mutant, reason in survivors:
        print(f"survived {mutant.module}:{mutant.line}:{mutant.column}: {mutant.change}"
              + (f"  (equivalent: {reason})" if reason else ""))


if __name__ == "__main__":
    main()
