"""Run the benchmarks: `python -m benchmarks` (all) or `python -m benchmarks ch02 check` (by name)."""
import importlib
import pkgutil
import sys

import benchmarks
from benchmarks.harness import machine, table


def main(names):
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
