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


through_layers.hands_out = (_TorchLayer,)  # the course's layers, which may use what the exercise forbids


def over_steps(fn, args):
    """A pure optimizer step fn(param=..., grad=..., state=..., **hyper-parameters), run once for each gradient in
    args["grads"], from args["param"] and args["state"], each step given the parameter and state the one before
    returned; every other entry of args is a hyper-parameter passed to every step. Where args["raises"] names an
    exception class ("ValueError"), a step should raise it, and doing so gives the text "raises ValueError" in
    place of an output.

    Returns (the parameter after each step, in order, as a list; the state after the last step).
    """
    hyper = {name: value for name, value in args.items() if name not in ("param", "grads", "state", "raises")}
    param, state, trajectory = args["param"], args["state"], []
    try:
        for grad in args["grads"]:
            param, state = fn(param=param, grad=grad, state=state, **hyper)
            trajectory.append(param)
    except Exception as error:
        if type(error).__name__ != args.get("raises"):
            raise
        return f"raises {args['raises']}"
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


# chapter 06

import contextlib  # noqa: E402 - the chapter 06 and 07 drivers need context managers

SIMULATED = "cuda"  # the device the chapter 06 drivers simulate on the CPU
PLACE = "_nncourse_device"  # the attribute that says where a tensor is while a device is simulated


# what torch makes on the CPU when no device is named
_FACTORIES = ("randn", "rand", "randint", "randperm", "normal", "zeros", "ones", "empty", "full", "arange",
              "linspace", "eye", "tensor", "as_tensor")


@contextlib.contextmanager
def _simulated_device():
    """While the block runs, tensors behave as if a second device, "cuda", were present, computed on the CPU (a
    torch function mode): .to("cuda"), .cuda(), device="cuda" and .cpu() tag their results with where they are
    (the tag PLACE), .device and .is_cuda report it, an operation given non-scalar tensors from two places raises
    torch's own RuntimeError ("Expected all tensors to be on the same device ..."), and .numpy() of a "cuda" tensor
    raises torch's TypeError. As on a real GPU, a tensor that a factory (torch.zeros, torch.randn, ...) makes
    without a device lies on the CPU; a torch.Generator draws only on its own device ("Expected a 'cuda' device
    type for generator but found 'cpu'"); and a torch.nn.Parameter made of a "cuda" tensor lies there. A tensor
    without a tag (a gradient autograd made) goes with anything; a moved tensor is a new object, as on a real
    device, except a Parameter, which a module's .to() moves in place."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    descriptors = {vars(torch._C.TensorBase)[name]: name for name in ("device", "is_cuda")}
    factories = {getattr(torch, name) for name in _FACTORIES}

    def place(tensor):
        return getattr(tensor, PLACE, None)

    def put(value, where):
        for leaf in tree_leaves(value):
            if isinstance(leaf, torch.Tensor):
                setattr(leaf, PLACE, where)
        return value

    def moved(tensor, result, where):
        if result is tensor and not isinstance(tensor, torch.nn.Parameter):
            result = tensor.view_as(tensor)
        return put(result, where)

    class SimulatedDevice(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func is torch._C._nn._parse_to:  # a module's .to() reads its arguments with it
                return func(*args, **kwargs)
            owner = getattr(func, "__self__", None)
            if getattr(func, "__name__", "") == "__get__" and owner in descriptors:
                where = place(args[0]) or "cpu"
                if descriptors[owner] == "is_cuda":
                    return where == SIMULATED
                return torch.device(where, 0) if where == SIMULATED else torch.device("cpu")
            if func is torch.Tensor.to:
                tensor, rest, copy = args[0], args[1:], kwargs.pop("copy", False)  # _parse_to takes no copy=
                if rest and isinstance(rest[0], torch.Tensor):
                    device, dtype = torch.device(place(rest[0]) or "cpu"), rest[0].dtype
                else:
                    device, dtype, _, _ = torch._C._nn._parse_to(*rest, **kwargs)
                result = tensor.to(dtype) if dtype is not None else tensor
                result = result.clone() if copy else result
                return moved(tensor, result, device.type if device is not None else place(tensor))
            if func in (torch.Tensor.cuda, torch.Tensor.cpu):
                return moved(args[0], args[0], SIMULATED if func is torch.Tensor.cuda else "cpu")
            if func is torch.Tensor.numpy and place(args[0]) == SIMULATED:
                raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                                "tensor to host memory first.")
            if isinstance(kwargs.get("generator"), torch.Generator):
                tensors = [a for a in args if isinstance(a, torch.Tensor)]
                device = torch.device(kwargs["device"]).type if kwargs.get("device") is not None else \
                    place(tensors[0]) or "cpu" if tensors else "cpu"
                if device != kwargs["generator"].device.type:
                    raise RuntimeError(f"Expected a '{device}' device type for generator but found "
                                       f"'{kwargs['generator'].device.type}'")
            if kwargs.get("device") is not None:
                where = torch.device(kwargs["device"]).type
                kwargs["device"] = "cpu"
                return put(func(*args, **kwargs), where)
            places = sorted({place(t) for t in tree_leaves((args, kwargs))
                             if isinstance(t, torch.Tensor) and t.dim() > 0 and place(t)})
            if len(places) > 1:
                raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                                   "cuda:0 and cpu!")
            result = func(*args, **kwargs)
            if places:
                return put(result, places[0])
            return put(result, "cpu") if func in factories and isinstance(result, torch.Tensor) else result

    made = torch.nn.Parameter.__new__

    def parameter(cls, data=None, requires_grad=True):
        made_now = made(cls, data, requires_grad)
        if place(data) is not None:
            setattr(made_now, PLACE, place(data))
        return made_now

    torch.nn.Parameter.__new__ = parameter
    try:
        with SimulatedDevice():
            yield
    finally:
        torch.nn.Parameter.__new__ = made


def _placed(value, where):
    """`value` with every tensor in it tagged as lying on `where` ("cpu" or the simulated "cuda")."""
    import torch
    from torch.utils._pytree import tree_leaves

    for leaf in tree_leaves(value):
        if isinstance(leaf, torch.Tensor):
            setattr(leaf, PLACE, where)
    return value


@contextlib.contextmanager
def _a_machine_with_a_gpu(capability=(8, 0)):
    """While the block runs, torch reports one CUDA GPU of compute capability `capability` (a pair):
    torch.cuda.is_available() answers True, device_count() 1, get_device_capability() the pair, is_bf16_supported()
    True (a T4 says so too, counting emulation), so that torch.autocast("cuda") and torch.amp.GradScaler("cuda") are
    enabled as on such a machine. Nothing runs on a GPU: with `_simulated_device` the tensors stay on the CPU.
    Everything is put back afterwards."""
    import torch

    reported = {"is_available": lambda: True, "device_count": lambda: 1,
                "get_device_capability": lambda device=None: tuple(capability),
                "is_bf16_supported": lambda including_emulation=True: True}
    saved = {name: getattr(torch.cuda, name) for name in reported}
    try:
        for name, function in reported.items():
            setattr(torch.cuda, name, function)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.cuda, name, function)


@contextlib.contextmanager
def _on_a_simulated_gpu_machine(simulated=True, capability=(8, 0)):
    """A machine with a CUDA GPU, simulated on the CPU (`_a_machine_with_a_gpu` and `_simulated_device`), while the
    block runs, where `simulated` is true; the machine as it is otherwise."""
    if not simulated:
        yield
        return
    with _a_machine_with_a_gpu(capability), _simulated_device():
        yield


def _where(module) -> str:
    """Where a module's parameters lie while a device is simulated: "cpu", "cuda", or "cpu and cuda"."""
    return " and ".join(sorted({getattr(p, PLACE, None) or "cpu" for p in module.parameters()}))


def _layout(value) -> str:
    """A nested value's structure as text, each tensor by where it lies: "{'x': tensor on cuda, 'n': int 3}"."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"tensor on {getattr(value, PLACE, None) or 'cpu'}"
    if isinstance(value, dict):
        inner = ", ".join(f"{key!r}: {_layout(item)}" for key, item in value.items())
        return ("" if type(value) is dict else type(value).__name__) + "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_layout(item) for item in value)
        if type(value) is list:
            return f"[{inner}]"
        return ("" if type(value) is tuple else type(value).__name__) + f"({inner}{',' if len(value) == 1 else ''})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def _leaves(value) -> list:
    """The values inside a nested value, in order: tensors as plain CPU tensors, anything else as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        return [torch.Tensor.detach(value).clone()]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def with_fake_devices(fn, args):
    """A device chooser fn(environ=..., cuda_available=..., mps_available=...) on a made-up machine: the
    environment variables args["variables"] (a dict) and availability probes answering args["cuda"] and args["mps"].

    Returns what fn returned, a torch.device as its name ("cuda", "cuda:1", "cpu")."""
    import torch

    result = fn(environ=dict(args["variables"]), cuda_available=lambda: args["cuda"], mps_available=lambda: args["mps"])
    return str(result) if isinstance(result, torch.device) else result


def onto_simulated_device(fn, args):
    """fn(batch, device) with args["device"] "cpu" or "cuda", simulated on the CPU (`_simulated_device`), the
    batch's tensors starting on args["start"] ("cpu" when absent).

    Returns (the result's structure as text, each tensor by where it lies: `_layout`; the values inside it, in
    order; the batch passed in, as `_layout` gives it after the call: a function that puts the moved tensors into
    the caller's dicts and lists changes where the caller's tensors lie, though every value stays the same)."""
    batch = _placed(args["batch"], args.get("start", "cpu"))
    with _simulated_device():
        result = fn(batch, args["device"])
    return _layout(result), _leaves(result), _layout(batch)


def _fake_device(durations, launch, asynchronous):
    """(work, clock, synchronize, calls) of a made-up device: each call of work() takes `launch` seconds of the
    caller's time to queue the next of `durations` (the last repeated), which the device runs after what it has
    queued already; synchronize() waits until the device is idle; clock() reads the caller's time. Not
    asynchronous, work() returns once its work is done, as on the CPU."""
    state = {"now": 0.0, "idle_at": 0.0, "calls": 0}

    def work():
        duration = durations[min(state["calls"], len(durations) - 1)]
        state["calls"] += 1
        state["now"] += launch
        state["idle_at"] = max(state["now"], state["idle_at"]) + duration
        if not asynchronous:
            state["now"] = state["idle_at"]

    def synchronize():
        state["now"] = max(state["now"], state["idle_at"])

    return work, lambda: state["now"], synchronize, state


def timed_on_a_fake_device(fn, args):
    """A timer fn(work, warmup=..., repeats=..., clock=..., synchronize=...) timing the work of a made-up device
    (`_fake_device`) whose calls take args["durations"] seconds, with the clock of that device and, when
    args["asynchronous"], its synchronize (else none is passed, as on the CPU); args["warmup"] and
    args["repeats"] are passed when present.

    Returns (what fn returned, how many times it called work)."""
    work, clock, synchronize, state = _fake_device(args["durations"], args["launch"], args["asynchronous"])
    options = {name: args[name] for name in ("warmup", "repeats") if name in args}
    if args["asynchronous"]:
        options["synchronize"] = synchronize
    result = fn(work, clock=clock, **options)
    return result, state["calls"]


def _small_network(params, norm=False):
    """Linear -> (BatchNorm1d) -> ReLU -> Linear with the given parameters {"0.weight": (H, D), ...} (state_dict
    names), in float32."""
    import torch

    hidden, inputs = params["0.weight"].shape
    outputs = params[f"{3 if norm else 2}.weight"].shape[0]
    layers = [torch.nn.Linear(inputs, hidden)] + ([torch.nn.BatchNorm1d(hidden)] if norm else []) + \
        [torch.nn.ReLU(), torch.nn.Linear(hidden, outputs)]
    model = torch.nn.Sequential(*layers)
    model.load_state_dict({**model.state_dict(), **params})
    return model


def epoch_on_simulated_device(fn, args):
    """A training epoch fn(model, batches, optimizer, loss_fn, device) on args["device"] ("cpu", or "cuda"
    simulated on the CPU: `_simulated_device`). The model (Linear, BatchNorm1d, ReLU, Linear, from
    args["params"]) starts on the CPU in eval mode, as after an evaluation; the batches are args["batches"], on
    the CPU; the optimizer is torch.optim.SGD(lr=args["lr"], momentum=0.9); the loss is cross-entropy.

    Returns (what fn returned, the model's state_dict afterwards, where the model's parameters lie)."""
    import torch

    model = _placed(_small_network(args["params"], norm=True), "cpu")
    model.eval()
    _placed(list(model.buffers()), "cpu")
    batches = _placed(args["batches"], "cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=args["lr"], momentum=0.9)
    with _simulated_device():
        result = fn(model, batches, optimizer, torch.nn.CrossEntropyLoss(), args["device"])
    state = {name: torch.Tensor.detach(value).clone() for name, value in model.state_dict().items()}
    return result, state, _where(model)


def one_mixed_precision_step(fn, args):
    """A mixed-precision step fn(model, x, y, optimizer, loss_fn, dtype=..., scaler=...) on the CPU, or, with
    args["device"] ("cpu" or "cuda"), on that device of a machine with a GPU of compute capability args["capability"]
    simulated on the CPU (`_on_a_simulated_gpu_machine`), where the model, x and y are moved first. The model (Linear,
    ReLU, Linear, float32, from args["params"]) holds stale gradients (all 1) from an earlier step; the optimizer is
    torch.optim.SGD(lr=args["lr"]), built after the move; the loss is cross-entropy times args["loss_weight"] (a term
    of a larger objective, say); args["dtype"] ("bfloat16" or "float16") is passed as a torch dtype when present, and
    with args["init_scale"] a torch.amp.GradScaler(that device, init_scale=...) as scaler. On the simulated GPU the
    arithmetic stays float32 (CUDA's autocast casts CUDA tensors only), so the autocast the model ran under is what
    tells a step that autocasts the tensors' device from one that autocasts another.

    Returns (the autocast the model's forward pass ran under: `_autocast_in_use`; what fn returned, each parameter's
    gradient afterwards, the parameters afterwards, the scaler's scale afterwards or None)."""
    import torch

    simulated, device = "device" in args, args.get("device", "cpu")
    model = _small_network(args["params"])
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    autocasts = []
    model.register_forward_pre_hook(lambda module, inputs: autocasts.append(_autocast_in_use()))
    weight = args["loss_weight"]

    def loss_fn(output, target):
        return torch.nn.functional.cross_entropy(output, target) * weight

    options = {"dtype": getattr(torch, args["dtype"])} if "dtype" in args else {}
    x, y = args["x"], args["y"]
    with _on_a_simulated_gpu_machine(simulated, tuple(args.get("capability", (8, 0)))):
        if simulated:
            _placed([*model.parameters(), x, y], "cpu")
            model.to(device)
            x, y = x.to(device), y.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args["lr"])
        scaler = torch.amp.GradScaler(device, init_scale=args["init_scale"]) if "init_scale" in args else None
        if scaler is not None:
            options["scaler"] = scaler
        result = fn(model, x, y, optimizer, loss_fn, **options)
    grads = {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    ran_under = "; then ".join(dict.fromkeys(autocasts)) or "the model was never called"
    return ran_under, result, grads, params, None if scaler is None else float(scaler.get_scale())


def _autocast_in_use() -> str:
    """The autocast on at this moment, by device type and dtype ("cuda float16", "cpu bfloat16"), or "none"."""
    import torch

    on = [f"{device} {str(torch.get_autocast_dtype(device)).replace('torch.', '')}" for device in ("cpu", "cuda")
          if torch.is_autocast_enabled(device)]
    return " and ".join(on) or "none"


DRIVERS.update({driver.__name__: driver for driver in
                (with_fake_devices, onto_simulated_device, timed_on_a_fake_device, epoch_on_simulated_device,
                 one_mixed_precision_step)})


# chapter 09

def _one_example_loss(model):
    """The loss of one example (x: (D,), y: 0-d int64) for a model named by `model`, as a function
    loss_fn(params, x, y) -> 0-d tensor that torch.func can differentiate: "softmax regression" (params W: (D, C),
    b: (C,)) or "two-layer tanh" (W1: (D, H), b1: (H,), W2: (H, C), b2: (C,)), each with cross-entropy."""
    import torch
    import torch.nn.functional as F

    if model == "softmax regression":
        def loss_fn(params, x, y):
            return F.cross_entropy(x @ params["W"] + params["b"], y)
    elif model == "two-layer tanh":
        def loss_fn(params, x, y):
            hidden = torch.tanh(x @ params["W1"] + params["b1"])
            return F.cross_entropy(hidden @ params["W2"] + params["b2"], y)
    else:
        raise ValueError(f"unknown model {model!r}")
    return loss_fn


def dp_sgd_on_a_model(fn, args):
    """A DP-SGD gradient fn(loss_fn, params, X, y, max_norm, noise_multiplier, generator): loss_fn is the
    one-example loss of args["model"] (`_one_example_loss`), the generator a torch.Generator on the CPU seeded with
    args["seed"]; the other entries of args are passed as they are. With args["device"] ("cuda") the tensors lie
    on a GPU, simulated on the CPU (`_on_a_simulated_gpu_machine`).

    Returns what fn returned; on the simulated GPU (where its tensors lie: `_layout`, and the values inside it:
    `_leaves`)."""
    import torch

    rest = {name: value for name, value in args.items() if name not in ("model", "seed", "device")}
    generator = torch.Generator().manual_seed(args["seed"])
    if "device" not in args:
        return fn(loss_fn=_one_example_loss(args["model"]), generator=generator, **rest)
    with _on_a_simulated_gpu_machine():
        result = fn(loss_fn=_one_example_loss(args["model"]), generator=generator, **_placed(rest, args["device"]))
    return _layout(result), _leaves(result)


def keywords_on_a_device(fn, args):
    """fn(**args); with args["device"] ("cuda"), fn(**rest) with every tensor of the rest lying on a GPU, simulated
    on the CPU (`_on_a_simulated_gpu_machine`).

    Returns what fn returned; on the simulated GPU (where its tensors lie: `_layout`, and the values inside it:
    `_leaves`)."""
    if "device" not in args:
        return fn(**args)
    rest = {name: value for name, value in args.items() if name != "device"}
    with _on_a_simulated_gpu_machine():
        result = fn(**_placed(rest, args["device"]))
    return _layout(result), _leaves(result)


DRIVERS.update({driver.__name__: driver for driver in (dp_sgd_on_a_model, keywords_on_a_device)})


# chapter 07

@contextlib.contextmanager
def _one_thread():
    """torch on one CPU thread while a small network trains, then as many as before: on tensors of a few dozen
    numbers a second thread only waits for the first (tens of milliseconds a step on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _evaluation_network(params):
    """Linear -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear in float64, from a state_dict `params` ("0.weight",
    "1.running_mean", ..., "4.bias"): a network whose output depends on its mode."""
    import torch

    hidden, inputs = params["0.weight"].shape
    model = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.Linear(hidden, params["4.weight"].shape[0])).double()
    model.load_state_dict(params)
    return model


def evaluated_in_a_mode(fn, args):
    """An evaluation fn(model, loader) of a network whose output depends on its mode (`_evaluation_network` from
    args["params"]), put in train mode when args["training"] is true and in eval mode otherwise; the loader is the
    list of batches (x, y) args["batches"], on the CPU, as a DataLoader yields them. With args["device"] ("cpu" or
    "cuda") the machine has a CUDA GPU, simulated on the CPU (`_on_a_simulated_gpu_machine`), and the model lies on
    that device. Dropout draws from torch's global generator, seeded here and restored afterwards.

    Returns (what fn returned, model.training afterwards, whether autograd was recording in any forward pass,
    where the model lies afterwards)."""
    import torch

    model = _evaluation_network(args["params"])
    model.train(bool(args["training"]))
    recording = []
    model.register_forward_pre_hook(lambda module, inputs: recording.append(torch.is_grad_enabled()))
    batches, device = list(args["batches"]), args.get("device")
    with torch.random.fork_rng(devices=[]), _one_thread(), _on_a_simulated_gpu_machine(device is not None):
        if device is not None:
            _placed([*model.parameters(), *model.buffers(), batches], "cpu")
            model.to(device)
        torch.manual_seed(0)
        result = fn(model, batches)
    return result, model.training, any(recording), _where(model)


def _resumable_run(args, seed_offset=0):
    """(model, optimizer, scheduler, generator, rng) of a small run: Linear -> ReLU -> Dropout(0.5) -> Linear in
    float64 from args["params"] ("0.weight", "0.bias", "3.weight", "3.bias"), torch.optim.AdamW, a OneCycleLR over
    one epoch more than the run has, a torch.Generator and a numpy Generator. With seed_offset 0 it is the run's
    start (args["rng"] the numpy Generator); otherwise a fresh run that a checkpoint should overwrite: other
    weights, other generator states and torch's global generator moved on."""
    import numpy as np
    import torch

    params = args["params"]
    hidden, inputs = params["0.weight"].shape
    model = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(hidden, params["3.weight"].shape[0])).double()
    model.load_state_dict({name: -value if seed_offset else value for name, value in params.items()})
    optimizer = torch.optim.AdamW(model.parameters(), lr=args["lr"], weight_decay=0.05)
    batches = -(-len(args["y"]) // args["batch_size"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args["lr"], total_steps=(args["epochs_before"] + args["epochs_after"] + 1) * batches)
    generator = torch.Generator().manual_seed(args["seed"] + seed_offset)
    rng = np.random.default_rng(args["seed"] + seed_offset) if seed_offset else args["rng"]
    torch.manual_seed(args["seed"] + seed_offset)
    return model, optimizer, scheduler, generator, rng


def _train_epochs(run, args, start, stop):
    """Epochs start .. stop − 1 of the run: shuffled batches (the torch.Generator), inputs with Gaussian noise of
    size args["noise"] (the numpy Generator), dropout (torch's global generator), AdamW and the schedule's step."""
    import torch

    model, optimizer, scheduler, generator, rng = run
    X, y = args["X"], args["y"]
    model.train()
    for _ in range(start, stop):
        order = torch.randperm(len(y), generator=generator)
        for first in range(0, len(y), args["batch_size"]):
            batch = order[first:first + args["batch_size"]]
            noise = torch.from_numpy(rng.normal(scale=args["noise"], size=(len(batch), X.shape[1])))
            loss = torch.nn.functional.cross_entropy(model(X[batch] + noise), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()


def _checkpoint_contents(value):
    """What a checkpoint holds, as the wire carries it: tensors, numbers, strings and None as they are, containers
    with their keys as str (an optimizer's state is keyed by parameter index), anything else by its type's name."""
    import torch

    if isinstance(value, torch.Tensor):
        return torch.Tensor.detach(value).clone()
    if isinstance(value, dict):
        return {str(key): _checkpoint_contents(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_checkpoint_contents(item) for item in value]
        return tuple(items) if type(value) is tuple else items
    if type(value) is int and not -2**63 <= value < 2**63:
        return str(value)  # a numpy generator's 128-bit state: compared exactly, as its digits
    if value is None or type(value) in (bool, int, float, str):
        return value
    return f"an object of type {type(value).__name__}"


def saved_after_training(fn, args):
    """A checkpoint writer fn(path, model, optimizer, scheduler, epoch, generator, rng), called after
    args["epochs_before"] epochs of a small run (`_resumable_run`, `_train_epochs`) with epoch = the last one
    finished, to write into a fresh temporary folder. The file is read back with torch.load(weights_only=True).

    Returns what the file holds (`_checkpoint_contents`), or a sentence saying why it could not be read."""
    import os
    import tempfile

    import torch

    with torch.random.fork_rng(devices=[]), _one_thread(), tempfile.TemporaryDirectory() as folder:
        run = _resumable_run(args)
        _train_epochs(run, args, 0, args["epochs_before"])
        path = os.path.join(folder, "checkpoint.pt")
        fn(path, *run[:3], args["epochs_before"] - 1, *run[3:])
        if not os.path.exists(path):
            return "no file was written at the path given"
        try:
            contents = torch.load(path, weights_only=True)
        except Exception as error:
            return _unloadable(path, error)
    return _checkpoint_contents(contents)


def _unloadable(path, error) -> str:
    """Why torch.load(path, weights_only=True) refused a checkpoint, naming each of its keys whose value torch
    refuses and that value's type (read back in full here, in the process that wrote it, to find them)."""
    import io

    import torch

    try:
        contents = torch.load(path, weights_only=False)
    except Exception:
        contents = None
    refused = []
    for key, value in contents.items() if isinstance(contents, dict) else ():
        buffer = io.BytesIO()
        try:
            torch.save({key: value}, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except Exception:
            refused.append(f"{key!r} holds a {type(value).__module__}.{type(value).__qualname__}")
    what = "; ".join(refused) if refused else f"the file holds a Python object ({type(error).__name__})"
    return f"{what}, which torch.load(path, weights_only=True) refuses. Save tensors, numbers and containers of " \
           "them: a state_dict(), get_state() or bit_generator.state, never the object itself"


def resumed_from_a_checkpoint(fn, args):
    """A checkpoint reader fn(path, model, optimizer, scheduler, generator, rng) resuming a small run
    (`_resumable_run`): args["epochs_before"] epochs are trained and saved with the notebook's save_checkpoint (the
    reference while this is checked), then fn loads the file into a fresh run (other weights, an optimizer without
    state, a schedule at its start, generators elsewhere), which trains on from the epoch fn returns to the end,
    args["epochs_before"] + args["epochs_after"] epochs in all. With args["saved_on"] "cuda" the file is written as
    a GPU run writes it, every tensor tagged cuda:0 (`_as_saved_on_a_gpu`), and fn reads it on a machine whose torch
    reports no CUDA, as a laptop resuming a run trained on Colab.

    Returns (the epoch fn returned, the fresh run's model's state_dict at the end)."""
    import os
    import tempfile

    import torch

    save_checkpoint = fn.__globals__["save_checkpoint"]
    end = args["epochs_before"] + args["epochs_after"]
    with torch.random.fork_rng(devices=[]), _one_thread(), tempfile.TemporaryDirectory() as folder:
        run = _resumable_run(args)
        _train_epochs(run, args, 0, args["epochs_before"])
        path = os.path.join(folder, "checkpoint.pt")
        on_a_gpu = args.get("saved_on") == "cuda"
        with _as_saved_on_a_gpu() if on_a_gpu else contextlib.nullcontext():
            save_checkpoint(path, *run[:3], args["epochs_before"] - 1, *run[3:])
        fresh = _resumable_run(args, seed_offset=1000)
        with _a_machine_without_a_gpu() if on_a_gpu else contextlib.nullcontext():
            start = fn(path, *fresh)
        _train_epochs(fresh, args, start, end)
    return start, {name: value.detach().clone() for name, value in fresh[0].state_dict().items()}


@contextlib.contextmanager
def _as_saved_on_a_gpu():
    """While the block runs, torch.save tags every tensor's storage as lying on cuda:0, as a run on a GPU saves it
    (torch.serialization.location_tag is what names the device a storage is restored to)."""
    import torch

    saved = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        yield
    finally:
        torch.serialization.location_tag = saved


@contextlib.contextmanager
def _a_machine_without_a_gpu():
    """While the block runs, torch reports no CUDA (torch.cuda.is_available() is False), also where there is one: a
    checkpoint whose tensors are tagged cuda:0 is then refused by a torch.load without map_location, as on a
    laptop."""
    import torch

    saved = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        yield
    finally:
        torch.cuda.is_available = saved


DRIVERS.update({driver.__name__: driver for driver in
                (evaluated_in_a_mode, saved_after_training, resumed_from_a_checkpoint)})


# chapter 08

import os  # noqa: E402 - the chapter 08 drivers fork processes

RANK_SECONDS = 30.0  # how long the ranks of one case may run before they are stopped (a collective that waits
# for a rank that never joins stops at gloo's own timeout, a little earlier)


def _loopback_works():
    """Whether a TCP connection to 127.0.0.1 can be made here (a fresh network namespace has its loopback down)."""
    import socket

    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=2):
                return True
    except OSError:
        return False


def _send(fd, message):
    """Write `message` (tensors, lists, dicts, strings, numbers, None) to the pipe `fd` with torch.save."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(message, buffer)
    data = memoryview(buffer.getvalue())
    while data:
        data = data[os.write(fd, data):]


def _run_rank(fn, make_args, rank, world_size, store_path, fd):
    """One rank, in a forked process: join the gloo group, call fn, send back what make_args' result reads after
    the call, or the exception it raised (its type, message and the learner's frames)."""
    import datetime
    import io
    import sys
    import traceback

    import torch
    import torch.distributed as dist

    printed = io.StringIO()
    sys.stdout = sys.stderr = printed  # a notebook's own stdout must not be used from a forked process
    try:
        torch.set_num_threads(1)
        from solutions.launching import loopback_interface  # the course's, as its launcher's ranks use it

        if loopback_interface() is not None:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
        store = dist.FileStore(store_path, world_size)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=RANK_SECONDS - 5))
        fn_args, read_back = make_args(rank)
        try:
            fn(**fn_args)
            message = {"output": read_back()}
        except BaseException as error:  # noqa: BLE001 - sys.exit and KeyboardInterrupt too: reported, not obeyed
            from autograder.learner.judge import learner_traceback

            message = {"error": type(error).__name__, "builtin": type(error).__module__ == "builtins",
                       "lines": learner_traceback(error)}
    except BaseException as error:  # noqa: BLE001 - the group could not be formed: say why
        message = {"error": "RuntimeError", "builtin": True, "setup": True,
                   "lines": traceback.format_exception_only(type(error), error)}
    message["printed"] = printed.getvalue()[-2000:]
    _send(fd, message)
    os.close(fd)  # the end of the message: the caller stops this process once every rank has sent its own
    import time

    time.sleep(RANK_SECONDS)  # leaving now could close connections another rank is still setting up


def _rank_leader(fn, make_args, world_size, store_path, writers):
    """Rank 0, the first forked process of a case: a session of its own (so one killpg stops every rank), then one
    forked process for each other rank."""
    os.setsid()
    if not _loopback_works():
        why = ("gloo needs the loopback network (127.0.0.1), which is down here: bring up the interface lo "
               "(the grading sandbox brings it up in its own network namespace).")
        for fd in writers:
            _send(fd, {"error": "RuntimeError", "builtin": True, "setup": True, "lines": [why], "printed": ""})
        return
    for rank, fd in enumerate(writers[1:], start=1):
        if os.fork() == 0:
            try:
                for other in writers:
                    if other != fd:
                        os.close(other)
                _run_rank(fn, make_args, rank, world_size, store_path, fd)
            finally:
                os._exit(0)
    for fd in writers[1:]:
        os.close(fd)
    _run_rank(fn, make_args, 0, world_size, store_path, writers[0])


class RankFailed(RuntimeError):
    """A rank of a process group ended without reporting back (killed, or it left with os._exit)."""


def on_ranks(fn, world_size, make_args, seconds=RANK_SECONDS):
    """Run fn on `world_size` ranks of a real gloo process group, one forked process each, and return what each
    rank's make_args read back, as a list in rank order.

    make_args(rank) -> (keyword arguments for fn, read_back: a function called after fn returns whose result,
    tensors, lists, dicts, numbers or None, is sent back). Forked processes inherit fn, so a function defined in a
    notebook works. The group meets through a FileStore in a temporary folder (no port to choose) and gloo talks
    over the loopback. When a rank raises, the first such rank (by rank number, among those that reported) is
    raised again here as an exception of the same built-in type (else RuntimeError) whose message names the rank
    and carries its traceback; the other ranks are stopped. Everything started here is killed and reaped before
    this returns, also past `seconds` (TimeoutError) or when this process is interrupted.
    """
    import select
    import signal
    import sys
    import tempfile
    import time

    import torch

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    with tempfile.TemporaryDirectory(prefix="nncourse-ranks-") as folder:
        pipes = [os.pipe() for _ in range(world_size)]
        leader = os.fork()
        if leader == 0:
            try:
                for reader, _ in pipes:
                    os.close(reader)
                _rank_leader(fn, make_args, world_size, os.path.join(folder, "store"), [w for _, w in pipes])
            finally:
                os._exit(0)
        for _, writer in pipes:
            os.close(writer)
        readers = {reader: rank for rank, (reader, _) in enumerate(pipes)}
        received, finished = {rank: bytearray() for rank in range(world_size)}, {}
        deadline, first_error_at = time.monotonic() + seconds, None
        try:
            while len(finished) < world_size:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"the {world_size} ranks did not all finish within {seconds:g} s (a rank "
                                       "waits in a collective that another rank never joins, or loops); they were "
                                       "stopped")
                if first_error_at is not None and now > first_error_at + 0.5:
                    break  # another rank failed: whoever has not reported is likely waiting for it
                ready, _, _ = select.select(list(readers), [], [], 0.05)
                for reader in ready:
                    chunk = os.read(reader, 1 << 20)
                    rank = readers[reader]
                    if chunk:
                        received[rank] += chunk
                        continue
                    del readers[reader]
                    os.close(reader)
                    finished[rank] = _received(received[rank])
                    if finished[rank] is None or "error" in finished[rank]:
                        first_error_at = first_error_at or time.monotonic()
        finally:
            try:
                os.killpg(leader, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            os.waitpid(leader, 0)
            for reader in readers:
                os.close(reader)
    for rank in sorted(finished):
        printed = (finished[rank] or {}).get("printed", "")
        if printed:
            print("".join(f"rank {rank}: {line}\n" for line in printed.splitlines()), end="")
    failed = sorted(rank for rank, message in finished.items() if message is None or "error" in message)
    if failed:
        raise _rank_error(failed[0], world_size, finished[failed[0]])
    return [finished[rank]["output"] for rank in range(world_size)]


def _received(data):
    """The message a rank sent (torch.load with weights_only: tensors and plain values only), or None."""
    import io

    import torch

    if not data:
        return None
    try:
        return torch.load(io.BytesIO(bytes(data)), weights_only=True)
    except Exception:  # noqa: BLE001 - cut short, or something other than tensors and plain values
        return None


def _rank_error(rank, world_size, message):
    """The exception that stands for rank `rank`'s failure, of its own built-in type where it had one."""
    import builtins

    if message is None:
        return RankFailed(f"rank {rank} of {world_size} ended without reporting back: it left with os._exit, "
                          "crashed or was killed")
    lines = [line for text in message["lines"] for line in str(text).rstrip().splitlines()]
    last = lines[-1] if lines else message["error"]
    text = last.split(": ", 1)[1] if last.startswith(message["error"] + ":") else last
    if message.get("setup"):
        return RuntimeError(f"the process group of {world_size} ranks could not start: " + "\n".join(lines))
    if message["error"] in ("SystemExit", "KeyboardInterrupt"):
        return RuntimeError(f"rank {rank} of {world_size} raised {last} (sys.exit and the like end a rank; return "
                            "instead)")
    body = "\n".join([f"on rank {rank} of {world_size}: {text}", *("  " + line for line in lines[:-1])])
    kind = getattr(builtins, message["error"], None) if message.get("builtin") else None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(body)
        except Exception:  # noqa: BLE001 - a built-in exception that takes other arguments
            pass
    return RuntimeError(f"{message['error']} {body}")


def gradients_averaged_on_ranks(fn, args):
    """A gradient-averaging fn(parameters) run on len(args["grads"]) ranks of a gloo process group (`on_ranks`):
    rank r passes a list of parameters shaped args["shapes"] (zeros, float64 unless its gradient says otherwise),
    whose .grad are args["grads"][r] (a tensor, or None). Returns {"rank r": [each parameter's .grad after the
    call, None where it has none]}."""
    import torch

    def make_args(rank):
        params = []
        for shape, grad in zip(args["shapes"], args["grads"][rank]):
            dtype = grad.dtype if grad is not None else torch.float64
            p = torch.nn.Parameter(torch.zeros(tuple(shape), dtype=dtype))
            p.grad = None if grad is None else grad.clone()
            params.append(p)
        read_back = lambda: [None if p.grad is None else torch.Tensor.detach(p.grad).clone() for p in params]  # noqa
        return {"parameters": params}, read_back

    key = _course_code_key(fn, args)
    if key not in _COURSE_RESULTS:
        found = on_ranks(fn, len(args["grads"]), make_args)
        result = {f"rank {rank}": grads for rank, grads in enumerate(found)}
        if key is None:
            return result
        _COURSE_RESULTS[key] = result
        while len(_COURSE_RESULTS) > 256:
            _COURSE_RESULTS.pop(next(iter(_COURSE_RESULTS)))
    import copy

    return copy.deepcopy(_COURSE_RESULTS[key])


_COURSE_RESULTS = {}  # (course function, its arguments' digest) -> what it gave on them


def _course_code_key(fn, args):
    """A key for remembering what the course's own code (a reference, a known mistake, an alternative: defined in
    solutions/ or autograder/instructor/exercises/) gave on `args`, which every check and test runs again and again, each run
    costing a group of processes; None for any other function, a learner's above all, which always runs."""
    import hashlib
    import io

    import torch

    module = getattr(fn, "__module__", None) or ""
    if not module.startswith(("solutions.", "autograder.instructor.exercises.")):
        return None
    buffer = io.BytesIO()
    torch.save(args, buffer)
    return fn, hashlib.sha256(buffer.getvalue()).hexdigest()


def epochs_of_a_sampler(cls, args):
    """A distributed sampler class, made for every rank: cls(range(args["n"]), rank=r, **args["params"]) for r in
    0 .. num_replicas − 1, each asked len() and, for each epoch e in 0 .. args["epochs"] − 1, set_epoch(e) and its
    indices. Returns ([len of each rank's sampler], [[rank r's indices in epoch e, as an int64 array] for each
    epoch] for each rank)."""
    import numpy as np

    lengths, indices = [], []
    for rank in range(args["params"]["num_replicas"]):
        sampler = cls(range(args["n"]), rank=rank, **args["params"])
        lengths.append(len(sampler))
        epochs = []
        for epoch in range(args["epochs"]):
            sampler.set_epoch(epoch)
            epochs.append(np.array([int(i) for i in sampler], dtype=np.int64))
        indices.append(epochs)
    return lengths, indices


def accumulated_on_a_network(fn, args):
    """A gradient-accumulation step fn(model, optimizer, loss_fn, x, y, micro_batches) on a Linear -> Tanh -> Linear
    network in float64 (weights from args["params"], state_dict names), holding stale gradients (all 1) from an
    earlier step; the optimizer is torch.optim.SGD(lr=args["lr"], momentum=0.9), the loss cross-entropy (mean).
    Returns (what fn returned, a float where it is a number or a one-entry tensor; each parameter's gradient
    afterwards; the parameters afterwards)."""
    import torch

    params = args["params"]
    model = torch.nn.Sequential(torch.nn.Linear(*params["0.weight"].shape[::-1], dtype=torch.float64),
                                torch.nn.Tanh(),
                                torch.nn.Linear(*params["2.weight"].shape[::-1], dtype=torch.float64))
    model.load_state_dict(params)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer = torch.optim.SGD(model.parameters(), lr=args["lr"], momentum=0.9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors this small gain nothing from threads; on a busy machine they cost 20x
    try:
        result = fn(model, optimizer, torch.nn.CrossEntropyLoss(), args["x"], args["y"], args["micro_batches"])
    finally:
        torch.set_num_threads(threads)
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        result = float(result.detach())
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        result = float(result)
    grads = {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    return result, grads, weights


DRIVERS.update({driver.__name__: driver for driver in
                (gradients_averaged_on_ranks, epochs_of_a_sampler, accumulated_on_a_network)})
