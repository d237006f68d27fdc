"""Run the benchmarks: `python -m benchmarks` (all) or `python -m benchmarks ch02 check` (by name).

`python -m benchmarks mutation [--chapter chNN] [--exercise ID] [--sample N]` runs the mutation
testing of the exercise checks instead (`benchmarks/mutation/`), and `python -m benchmarks gpu [--dry-run] ...` the
prepared run on one NVIDIA GPU (`benchmarks/gpu.py`; `--help` lists its options)."""
import importlib
import pkgutil
import sys

import benchmarks
from benchmarks.harness import machine, table


def main(names):
    if names[:1] == ["mutation"]:
        from benchmarks.mutation.report import main as mutation_report

        return mutation_report(names[1:])
    if names[:1] == ["gpu"]:
        from benchmarks.gpu import main as gpu_run

        return gpu_run(names[1:])
    modules = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    chosen = [m for m in modules if not names or any(name in m for name in names)]
    if not chosen:
        sys.exit(f"no benchmark matches {names}; there are: {', '.join(m[6:] for m in modules)}")
    print(f"machine: {machine()}\n")
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name[6:]}: {module.__doc__.strip().splitlines()[0]}")
        print(table(module.run()), end="\n\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
