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


def test_adam_step_fewer_passes_gives_the_references_bits_and_leaves_its_inputs_alone():
    import numpy as np

    from benchmarks.bench_ch04_optimizers import _adam_step_fewer_passes
    from solutions.ch04_optimizers import adam_step

    rng = np.random.default_rng(0)
    for dtype, weight_decay in ((np.float32, 0.0), (np.float32, 0.1), (np.float64, 0.0)):
        param, grad = rng.standard_normal((2, 37), dtype=dtype)
        ours_p, ours_s, ref_p, ref_s = param, {}, param, {}
        for _ in range(3):
            grad = rng.standard_normal(37, dtype=dtype)
            before = (ours_p.copy(), grad.copy(), {k: np.copy(v) for k, v in ours_s.items()})
            old_p = ours_p
            ours_p, new_ours_s = _adam_step_fewer_passes(old_p, grad, ours_s, lr=0.01, weight_decay=weight_decay)
            assert np.array_equal(before[0], old_p)
            ref_p, ref_s = adam_step(ref_p, grad, ref_s, lr=0.01, weight_decay=weight_decay)
            assert np.array_equal(before[1], grad)
            assert all(np.array_equal(before[2][k], v) for k, v in ours_s.items())
            ours_s = new_ours_s
            assert ours_p.dtype == ref_p.dtype and np.array_equal(ours_p, ref_p)
            assert ours_s["step"] == ref_s["step"]
            for key in ("exp_avg", "exp_avg_sq"):
                assert np.array_equal(ours_s[key], ref_s[key])


def test_the_devices_benchmark_takes_a_gpus_peak_from_chapter_06s_table_by_whole_name(monkeypatch):
    import torch

    from benchmarks import bench_ch06_devices
    from benchmarks.gpu import chapter_peak_lookup

    lookup = chapter_peak_lookup()
    for name in ("NVIDIA L4", "NVIDIA L40S", "NVIDIA H100 80GB HBM3", "Tesla T4"):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device, name=name: name)
        peak, how = bench_ch06_devices.peak_flops(torch.device("cuda"))
        assert peak == lookup(name) * 1e12 and "chapter 06's table" in how
    assert lookup("NVIDIA L4") != lookup("NVIDIA L40S")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA GeForce GTX 480")
    assert bench_ch06_devices.peak_flops(torch.device("cuda")) == (None, "NVIDIA GeForce GTX 480: not in chapter 06's table")
