"""How an implementation is run on a case's arguments: `Exercise.call(fn, args)`.

Drivers live here, apart from the exercises' specifications, because the learner's bundle and the
grading sandbox need them without the references. Each driver is a plain function of
(fn, args: dict) returning what is compared; add one here when an exercise needs a new shape of
call (a class to fit, a function to run over many steps).
"""


def keywords(fn, args):
    """fn(**args): the usual case."""
    return fn(**args)


def at_every_step(fn, args):
    """A schedule `fn(step, total_steps, **rest)` at steps 0 .. total_steps + 2, as one array."""
    import numpy as np

    rest = {key: value for key, value in args.items() if key != "total_steps"}
    return np.array([float(fn(step, args["total_steps"], **rest)) for step in range(args["total_steps"] + 3)])


DRIVERS = {driver.__name__: driver for driver in (keywords, at_every_step)}
