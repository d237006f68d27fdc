"""`python -m benchmarks mutation [--chapter chNN] [--exercise ID] [--sample N]`: the mutation report.

Per exercise: how many mutants were made, killed, probably equivalent and not equivalent, each
survivor with its change and, for those not equivalent, the input that tells it apart. Then per
chapter the mutation score, killed / (generated − probably equivalent), and the time taken.
"""
from __future__ import annotations

import argparse
import time

from autograder.learner import registry
from benchmarks.harness import machine
from benchmarks.mutation.runner import EQUIVALENT, KILLED, NOT_EQUIVALENT, TIME_LIMIT_S, ExerciseResult, \
    mutation_score, run_exercise


def main(argv: list[str]) -> None:
    options = parser().parse_args(argv)
    exercises = chosen_exercises(options.chapter, options.exercise)
    print(f"machine: {machine()}\n")
    print("== mutation: each exercise's mutants through its check (hidden cases included)\n")
    start = time.perf_counter()
    results = []
    for exercise in exercises:
        results.append(run_exercise(exercise, sample=options.sample, limit_s=options.time_limit))
        print(exercise_report(results[-1]), end="\n\n", flush=True)
    print(chapter_table(results))
    print(f"\ntotal time: {time.perf_counter() - start:.1f} s")


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog="python -m benchmarks mutation",
                                      description="Mutation testing of the exercise checks: every exercise's "
                                                  "mutants through its check, and each survivor classified.")
    options.add_argument("--chapter", help="only this chapter's exercises (ch02)")
    options.add_argument("--exercise", help="only this exercise (ch02.mse_loss)")
    options.add_argument("--sample", type=int, help="at most N mutants per exercise, spread evenly over its lines")
    options.add_argument("--time-limit", type=float, default=TIME_LIMIT_S,
                         help=f"seconds a mutant's check may run (default {TIME_LIMIT_S:g})")
    return options


def chosen_exercises(chapter: str | None, exercise_id: str | None) -> list[registry.Exercise]:
    if exercise_id:
        return [registry.get(exercise_id)]
    exercises = [exercise for exercise in registry.all_exercises() if chapter in (None, exercise.chapter)]
    if not exercises:
        raise SystemExit(f"no exercise in chapter {chapter!r}")
    return exercises


def exercise_report(result: ExerciseResult) -> str:
    """A count line, then each survivor: those not equivalent first, with the input that tells them apart."""
    lines = [f"{result.exercise_id}: {len(result.results)} mutants, {result.count(KILLED)} killed, "
             f"{result.count(EQUIVALENT)} probably equivalent, {result.count(NOT_EQUIVALENT)} not equivalent "
             f"({result.seconds:.1f} s)"]
    for survivor in result.with_status(NOT_EQUIVALENT):
        lines += [f"  not equivalent       {survivor.mutant.description}", f"    told apart by {survivor.detail}"]
    lines += [f"  probably equivalent  {survivor.mutant.description}" for survivor in result.with_status(EQUIVALENT)]
    return "\n".join(lines)


def chapter_table(results: list[ExerciseResult]) -> str:
    """One row per chapter: mutants, killed, probably equivalent, not equivalent, score."""
    rows = [("chapter", "mutants", "killed", "probably equivalent", "not equivalent", "score")]
    for chapter in sorted({result.exercise_id.split(".")[0] for result in results}):
        mine = [result for result in results if result.exercise_id.startswith(chapter + ".")]
        killed, counted = mutation_score(mine)
        rows.append((chapter, str(sum(len(r.results) for r in mine)), str(killed),
                     str(sum(r.count(EQUIVALENT) for r in mine)), str(sum(r.count(NOT_EQUIVALENT) for r in mine)),
                     f"{killed / counted:.3f}" if counted else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
