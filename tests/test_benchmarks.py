"""The benchmark harness measures and reports; the benchmarks themselves are run by hand."""
import importlib
import pkgutil

import benchmarks
from benchmarks.harness import Comparison, compare, median_time, table


def test_median_time_is_positive_and_compare_reports_a_ratio():
    assert median_time(lambda: sum(range(100)), repeats=3, min_time=0.001) > 0
    result = compare("sum", ("ours", lambda: sum(range(10))), ("peer", lambda: sum(range(1000))),
                     repeats=3, min_time=0.001)
    assert 0 < result.ratio < 1


def test_table_lists_every_comparison_with_its_ratio():
    text = table([Comparison("a", "x", "y", 1e-3, 2e-3, note="why"), Comparison("b", "x", "y", 2.0, 1.0)])
    assert "0.50x" in text and "2.00x" in text and "a: why" in text


def test_every_benchmark_module_has_a_docstring_and_run():
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")]
    assert names
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        assert module.__doc__ and callable(module.run)
