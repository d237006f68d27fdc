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
    """A schedule `fn(step, total_steps, **rest)` at steps 0 .. total_steps + 2, as one array.

    The array keeps the precision the schedule computes in: the dtype of the numpy floats it returns (a
    float32 schedule is compared as float32, a float16 one is seen as too coarse), float64 when it returns
    Python numbers, which go through float() as any other value does."""
    import numpy as np

    rest = {key: value for key, value in args.items() if key != "total_steps"}
    values = [_number(fn(step, args["total_steps"], **rest)) for step in range(args["total_steps"] + 3)]
    numpy_dtypes = [value.dtype for value in values if isinstance(value, np.floating)]
    return np.array(values, dtype=np.result_type(*numpy_dtypes) if numpy_dtypes else np.float64)


def _number(value):
    """One step's value: a numpy float (or a float array of one entry) as a numpy float of its own dtype,
    anything else through float()."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size == 1:
        return value.reshape(())[()]
    return value if isinstance(value, np.floating) else float(value)


at_every_step.entry_label = "step"  # check messages label the output's entries by step: step 0, step 1, ...


def fit_then_transform(cls, args):
    """A class in scikit-learn's style: cls(**args["params"]), fitted on args["train"], then transforming args["test"].

    Returns (whether fit returned the object itself, each attribute named in args["learned"], what
    transform returned). Where args["raises"] names an exception class ("ValueError"), transform
    should raise it, and doing so gives the text "raises ValueError" in place of an output.
    """
    estimator = cls(**args["params"])
    returned = estimator.fit(args["train"])
    learned = [getattr(estimator, name) for name in args["learned"]]
    expected_error = args.get("raises")
    try:
        transformed = estimator.transform(args["test"])
    except Exception as error:
        if expected_error is None or type(error).__name__ != expected_error:
            raise
        transformed = f"raises {expected_error}"
    return (returned is estimator, *learned, transformed)


def epochs_of_batches(cls, args):
    """An iterable of mini-batches: iterator = cls(**args, less "epochs").

    Returns (len(iterator), [list(iterator) for each of args["epochs"] passes]).
    """
    iterator = cls(**{name: value for name, value in args.items() if name != "epochs"})
    return len(iterator), [list(iterator) for _ in range(args["epochs"])]


def autograd_expression(cls, args):
    """A scalar autograd class: the expression args["expression"] (Python source) evaluated on leaves
    {name: cls(number)} from args["leaves"], then backward() on the result.

    Returns (the result's value as a float, {leaf name: the leaf's grad as a float}).
    """
    leaves = {name: cls(value) for name, value in args["leaves"].items()}
    out = eval(args["expression"], {"__builtins__": {}}, dict(leaves))
    out.backward()
    return float(out.data), {name: float(leaf.grad) for name, leaf in leaves.items()}


def formula_as_f(fn, args):
    """fn(**args), where args["f"] is a formula in x with numpy as np (e.g. "np.sum(x ** 3)"), passed to
    fn as the function f(x) -> float that it computes."""
    import numpy as np

    formula = args["f"]

    def f(x):
        return float(eval(formula, {"__builtins__": {}, "np": np}, {"x": x}))
    return fn(**{**args, "f": f})


class _TorchLayer:
    """One of the chapter's layers, computed by torch in float64 behind the chapter's layer interface:
    forward(x), backward(grad_out), params() (the numpy arrays themselves), grads()."""

    def __init__(self, kind, params):
        import numpy as np

        self.kind, self._params = kind, list(params)
        self._grads = [np.zeros_like(p) for p in self._params]

    def forward(self, x):
        import numpy as np
        import torch

        functions = {"linear": lambda x, W, b: x @ W + b, "relu": torch.relu, "sigmoid": torch.sigmoid,
                     "tanh": torch.tanh}
        with torch.enable_grad():
            self._x = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
            self._p = [torch.tensor(p, requires_grad=True) for p in self._params]
            self._out = functions[self.kind](self._x, *self._p)
        return self._out.detach().numpy().copy()

    def backward(self, grad_out):
        import numpy as np
        import torch

        if getattr(self, "_out", None) is None:
            raise RuntimeError(f"backward was called on a {self.kind} layer before its forward")
        grad_out = np.asarray(grad_out, dtype=np.float64)
        if grad_out.shape != tuple(self._out.shape):
            raise ValueError(f"the {self.kind} layer's backward got a gradient of shape {grad_out.shape}, but its "
                             f"output has shape {tuple(self._out.shape)}")
        found = torch.autograd.grad(self._out, [self._x, *self._p], torch.from_numpy(grad_out), retain_graph=True)
        self._grads = [g.numpy().copy() for g in found[1:]]
        return found[0].numpy().copy()

    def params(self):
        return list(self._params)

    def grads(self):
        return list(self._grads)


def through_layers(cls, args):
    """A network class with the chapter's layer interface: cls(*layers), then forward(args["x"]) and
    backward(args["grad_out"]).

    The layers come from args["layers"], each {"kind": "linear", "W": (D, M), "b": (M,)} or {"kind": "relu"},
    "sigmoid" or "tanh"; torch computes them in float64, so that only how cls chains them is judged. Returns
    (forward's output, [each array grads() lists], backward's result, whether params() lists the layers' own
    parameter arrays, in layer order).
    """
    layers = [_TorchLayer(spec["kind"], [spec[name] for name in ("W", "b") if name in spec])
              for spec in args["layers"]]
    network = cls(*layers)
    out = network.forward(args["x"])
    grad_in = network.backward(args["grad_out"])
    grads = list(network.grads())
    own = [p for layer in layers for p in layer._params]
    listed = list(network.params())
    return out, grads, grad_in, len(listed) == len(own) and all(a is b for a, b in zip(listed, own))


def over_steps(fn, args):
    """A pure optimizer step fn(param=..., grad=..., state=..., **hyper-parameters), run once for each gradient in
    args["grads"], from args["param"] and args["state"], each step given the parameter and state the one before
    returned; every other entry of args is a hyper-parameter passed to every step.

    Returns (the parameter after each step, in order, as a list; the state after the last step).
    """
    hyper = {name: value for name, value in args.items() if name not in ("param", "grads", "state")}
    param, state, trajectory = args["param"], args["state"], []
    for grad in args["grads"]:
        param, state = fn(param=param, grad=grad, state=state, **hyper)
        trajectory.append(param)
    return trajectory, state


DRIVERS = {driver.__name__: driver for driver in
           (keywords, at_every_step, fit_then_transform, epochs_of_batches, autograd_expression, formula_as_f,
            through_layers, over_steps)}


# chapter 05

def method_calls(cls, args):
    """An object with state, used as a training loop uses it: obj = cls(**args["params"]), then each
    [method name, {keyword arguments}] of args["calls"] called in order, then the attributes named in
    args["attributes"] read.

    A list of arrays passed under one name to several calls is, from the second call on, the first call's list of
    arrays overwritten in place with the new values: a network's parameters stay the same arrays from one epoch to
    the next, so an object that keeps them without copying sees them change.
    Returns (the list of what each call returned, None for a call that returns the object itself, as train() and
    eval() do; then each attribute, in order).
    """
    import numpy as np

    obj, live, returned = cls(**args["params"]), {}, []
    for method, kwargs in args["calls"]:
        passed = dict(kwargs)
        for name, value in kwargs.items():
            if isinstance(value, list) and value and all(isinstance(item, np.ndarray) for item in value):
                if name in live and [a.shape for a in live[name]] == [item.shape for item in value]:
                    for target, new in zip(live[name], value):
                        target[...] = new
                else:
                    live[name] = [np.array(item, copy=True) for item in value]
                passed[name] = live[name]
        result = getattr(obj, method)(**passed)
        returned.append(None if result is obj else result)
    return (returned, *(getattr(obj, name) for name in args.get("attributes", ())))


DRIVERS[method_calls.__name__] = method_calls
