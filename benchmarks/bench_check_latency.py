"""check() latency per exercise: the whole inline check against calling the reference on the same cases.

The peer is the bare work a check cannot avoid: building each visible case's inputs and running the
reference on them once. The ratio is the check's overhead factor (copying inputs to detect
in-place changes, running the learner's function, comparing, formatting the report).
"""
from autograder import check
from autograder.learner import registry
from benchmarks.harness import Comparison, median_time


def bare_reference_run(exercise):
    for case in exercise.visible_cases():
        exercise.call(exercise.reference, case.make_args())


def run():
    results = []
    for exercise in registry.all_exercises():
        ours = median_time(lambda: check(exercise.id, exercise.reference, verbose=False), repeats=5, min_time=0.02)
        peer = median_time(lambda: bare_reference_run(exercise), repeats=5, min_time=0.02)
        results.append(Comparison(f"check {exercise.id}", "check()", "reference alone", ours, peer))
    slowest = max(results, key=lambda r: r.ours_s)
    slowest.note = f"the slowest check takes {slowest.ours_s * 1e3:.1f} ms (budget: 500 ms)"
    return results
