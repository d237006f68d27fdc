"""Mutation testing of the exercise checks: does each check fail small changes to its reference?

`mutants.py` makes the mutants, `inputs.py` the perturbed inputs that tell a survivor apart,
`runner.py` classifies each mutant (killed, probably equivalent, not equivalent), and `report.py`
is the command line, `python -m benchmarks mutation`.
"""
