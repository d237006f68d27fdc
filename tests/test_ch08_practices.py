"""Chapter 08's section 6, what a real data-parallel script adds, and section 5's comparison with DDP: every claim
the notebook makes about them, on real gloo process groups.

The practices (solutions/ch08_distributed.py, PRACTICE_CELLS) run here on ranks forked from this process
(drivers.on_ranks, as the exercise checks run), each returning the lines rank 0 prints; the notebook launches the
same functions with torchrun, and the slow test at the end does so on 3 and 4 ranks. Beside each practice, the
failure it prevents, shown to happen: a rank that reads the checkpoint before rank 0 has written it, a GPU
checkpoint loaded without map_location on a machine without one, a rank left waiting without join(), torch's own
SyncBatchNorm refused on the CPU, the padding's repeats counted twice. And section 1's facts about gloo's average.
"""
import ast
import math
import re
import time

import pytest
import torch
import torch._dynamo  # noqa: F401 - what DDP's first construction imports (seconds): once here, not in every forked rank
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from autograder.learner import drivers
from solutions import ch08_distributed as ch08
from solutions import launching
from solutions.data import digits
from solutions.models import mlp
from tests.test_ch08_simulated_devices import write_script

CPU = torch.device("cpu")
DIGITS = [torch.tensor(part) for part in digits()]  # what the script's DIGITS holds on a CPU rank


def on_ranks(world, work, seconds=drivers.RANK_SECONDS):
    """work(rank) on `world` ranks of a gloo group forked from this process  ->  what each rank's call returned."""
    found = {}

    def run(rank):
        found["out"] = work(rank)

    return drivers.on_ranks(run, world, lambda rank: ({"rank": rank}, lambda: found["out"]), seconds=seconds)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every practice on 2 ranks, in the order the notebook's launch runs them: {name: rank 0's lines}."""
    path = str(tmp_path_factory.mktemp("practices") / "checkpoint.pt")
    practices = {"checkpoint": lambda: ch08.checkpoint_on_rank_0(CPU, DIGITS, path),
                 "join": lambda: ch08.uneven_inputs_with_join(CPU, DIGITS),
                 "batchnorm": lambda: ch08.batch_norm_across_ranks(CPU, DIGITS),
                 "evaluate": lambda: ch08.evaluate_each_digit_once(CPU, DIGITS),
                 "lr": lambda: ch08.scaled_learning_rate(CPU, DIGITS),
                 "unused": lambda: ch08.unused_parameters(CPU, DIGITS)}
    found = on_ranks(2, lambda rank: {name: practice() for name, practice in practices.items()})
    assert found[0] == found[1]  # every rank computes the same report
    return found[0]


def claims(lines):
    """The yes/no answers the practices printed, in order: each True or False that follows a colon."""
    return [answer for line in lines for answer in re.findall(r": (True|False)\b", line)]


def test_every_claim_a_practice_prints_is_true_on_2_ranks(two_ranks):
    counted = {name: len(claims(lines)) for name, lines in two_ranks.items()}
    assert counted == {"checkpoint": 3, "join": 2, "batchnorm": 1, "evaluate": 0, "lr": 0, "unused": 3}
    for name, lines in two_ranks.items():
        assert set(claims(lines)) <= {"True"} and not any("nan" in line for line in lines), (name, lines)


# ---------------------------------------------------------------- 6.1 checkpoints

def _read_early(barrier, path):
    """Rank 0 writes `path` after a moment (a large checkpoint takes time); rank 1 reads it, after a barrier or
    not.  ->  what rank 1 met: "read" or the exception's name"""
    def work(rank):
        if rank == 0:
            time.sleep(0.5)
            torch.save({"w": torch.ones(3)}, path)
        if barrier:
            dist.barrier()
        if rank == 1:
            try:
                torch.load(path, weights_only=True)
                return "read"
            except OSError as error:
                return type(error).__name__
    return work


def test_without_the_barrier_a_rank_reads_before_rank_0_has_written(tmp_path):
    assert on_ranks(2, _read_early(False, tmp_path / "early.pt"))[1] == "FileNotFoundError"
    assert on_ranks(2, _read_early(True, tmp_path / "waited.pt"))[1] == "read"


def test_a_checkpoint_saved_on_a_gpu_loads_on_every_rank_of_a_machine_without_one(tmp_path):
    """Rank 0 saves as a GPU run saves (every tensor tagged cuda:0), the ranks load where torch sees no CUDA: the
    practice's map_location puts the tensors on the rank's device; without it, torch.load refuses."""
    path = str(tmp_path / "gpu.pt")

    def work(rank):
        with drivers._as_saved_on_a_gpu(), drivers._a_machine_without_a_gpu():
            lines = ch08.checkpoint_on_rank_0(CPU, DIGITS, path)
            try:
                torch.load(path, weights_only=True)
                refused = ""
            except RuntimeError as error:
                refused = str(error)
        return lines, refused

    for lines, refused in on_ranks(2, work):
        assert set(claims(lines)) == {"True"}, lines
        assert "Attempting to deserialize object on a CUDA device" in refused


# ---------------------------------------------------------------- 6.2 uneven inputs

def test_without_join_the_rank_with_more_batches_waits_until_it_is_stopped():
    """Rank 1 has one batch more than rank 0: its last backward waits in DDP's all_reduce for a rank that has left
    the loop, and nothing ends it but a time limit (here the check's 2 s, in the scripts the group's 60 s)."""
    def work(rank):
        model = DistributedDataParallel(mlp([64, 32, 10]))
        for rows in ch08.uneven_rows(rank, 1347, 16)[:2 + rank]:
            F.cross_entropy(model(DIGITS[0][rows]), DIGITS[2][rows]).backward()

    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not all finish within 2 s"):
        on_ranks(2, work, seconds=2)
    assert time.monotonic() - start < 15


def test_join_divides_by_the_world_size_ddp_started_with(two_ranks):
    assert "divides by 2: largest |difference| below 1e-12: True" in two_ranks["join"][-1]
    assert two_ranks["join"][0] == "join: rank r has 3 + r batches of 16 rows (3, 4), trained under model.join()"


# ---------------------------------------------------------------- 6.3 batch normalization

def test_each_ranks_own_statistics_change_outputs_gradients_and_running_statistics(two_ranks):
    line = two_ranks["batchnorm"][1]
    gaps = [float(figure) for figure in re.findall(r"(?:outputs|gradients|statistics) ([\d.e-]+)", line)]
    assert len(gaps) == 3 and min(gaps) > 1e-3, line  # far above rounding: the equality is gone


def test_synced_batch_norm_on_one_rank_is_torchs_batch_norm():
    """With one rank the union of the ranks' rows is the rank's own: outputs, gradients of the input and the
    parameters, running mean and variance after two steps, all torch.nn.BatchNorm1d's."""
    def work(rank):
        x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
        found = []
        for norm in (torch.nn.BatchNorm1d(4, dtype=torch.float64), ch08.SyncedBatchNorm1d(4, dtype=torch.float64)):
            for step in range(2):
                out = norm(x * (step + 1))
                grads = torch.autograd.grad((out * torch.arange(24.0).view(6, 4)).sum(), [x, *norm.parameters()])
            found.append([out, *grads, norm.running_mean, norm.running_var, norm.num_batches_tracked])
        norm.eval()
        found[1].append(norm(x) - torch.nn.functional.batch_norm(x, norm.running_mean, norm.running_var,
                                                                 norm.weight, norm.bias, eps=norm.eps))
        return found

    (torchs, synced), = on_ranks(1, work)
    for a, b in zip(torchs, synced):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert synced[-1].abs().max() == 0  # evaluation mode: BatchNorm1d's own, with the running statistics


def test_torchs_sync_batch_norm_is_refused_on_the_cpu_by_ddp_and_by_its_forward_pass():
    """What the notebook says torch 2.13 does: DDP refuses a CPU model holding SyncBatchNorm, and its forward pass
    raises outside DDP, in a process group. A torch that runs it on the CPU fails here, and the chapter should then
    show it beside SyncedBatchNorm1d."""
    def work(rank):
        errors = []
        for attempt in (lambda: DistributedDataParallel(torch.nn.Sequential(torch.nn.SyncBatchNorm(3))),
                        lambda: torch.nn.SyncBatchNorm(3)(torch.randn(4, 3))):
            try:
                attempt()
                errors.append("")
            except ValueError as error:
                errors.append(str(error))
        return errors

    for refused_by_ddp, refused_by_forward in on_ranks(2, work):
        assert refused_by_ddp == "SyncBatchNorm layers only work with GPU modules"
        assert refused_by_forward.startswith("SyncBatchNorm expected input tensor to be on GPU")


# ---------------------------------------------------------------- 6.4 evaluation

def test_the_padding_is_counted_twice_as_read_and_once_by_position(two_ranks):
    lines = two_ranks["evaluate"]
    assert lines[0] == "evaluate: 449 test digits on 2 ranks, 225 each, 1 of them read twice"
    read, once, alone = (re.search(r"(\d+) right of (\d+)", line).groups() for line in lines[1:])
    assert read[1] == "450" and once == alone and alone[1] == "449"
    assert int(read[0]) in (int(alone[0]), int(alone[0]) + 1)  # the repeated digit, right or wrong


@pytest.mark.parametrize("n, world", [(449, 2), (449, 4), (10, 3), (5, 8), (12, 4)])
def test_position_rank_plus_i_times_w_marks_exactly_the_repeats(n, world):
    """The practice's rule on DistributedSampler itself: the entries whose position is below n are every index
    once; those at n or after are the padding, repeats of the order's first indices."""
    kept, repeats = [], []
    for rank in range(world):
        for i, index in enumerate(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)):
            (kept if rank + i * world < n else repeats).append(index)
    assert sorted(kept) == list(range(n))
    assert len(repeats) == world * math.ceil(n / world) - n and set(repeats) <= set(range(n))


def test_the_answer_keys_of_the_padded_evaluation_question():
    counts = [len(DistributedSampler(range(450), num_replicas=4, rank=rank, shuffle=False)) for rank in range(4)]
    dropped = [len(DistributedSampler(range(450), num_replicas=4, rank=rank, shuffle=False, drop_last=True))
               for rank in range(4)]
    assert (sum(counts), counts[0], sum(dropped)) == (452, 113, 448)


# ---------------------------------------------------------------- 6.5 the learning rate

def test_linear_scaling_follows_one_process_and_the_unscaled_rate_falls_behind(two_ranks):
    losses = {line.split(":")[0].strip(): [float(x) for x in line.split(":")[1].split()]
              for line in two_ranks["lr"][1:]}
    alone, same, scaled, warmed, sixteen = losses.values()
    assert all(s > a + 0.1 for s, a in zip(same, alone))  # lr 0.1 on 2 ranks: less far each epoch
    assert abs(same[1] - alone[0]) < 0.02  # ... two epochs to go as far as one process in one
    assert all(abs(s - a) < 0.02 for s, a in zip(scaled, alone))  # lr 0.2: close behind one process
    assert all(w > s for w, s in zip(warmed, scaled))  # the warm-up costs a little here
    assert sixteen[2] > sixteen[1]  # 16 x lr: past the stable rate, the loss rises again
    assert list(losses)[3] == "2 ranks x 32 rows, lr 0.2 after a warm-up of 21 steps"


def test_the_warm_up_raises_the_rate_from_lr_to_w_times_lr_over_its_steps():
    """lr_losses given W · lr = 0.2 and a warm-up of 4 steps on 2 ranks: its SGD steps at 0.1, then 0.125, 0.15,
    0.175, then 0.2 from the fifth step on (the rates seen through a subclass of SGD put in its place)."""
    seen = []

    class Recorded(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    def work(rank):
        saved, torch.optim.SGD = torch.optim.SGD, Recorded
        try:
            ch08.lr_losses(DistributedDataParallel(mlp([64, 32, 10])), DIGITS, 0.2, 1, 32, warmup=4)
        finally:
            torch.optim.SGD = saved
        return seen

    rates = on_ranks(2, work)[0]
    assert rates[:6] == pytest.approx([0.1, 0.125, 0.15, 0.175, 0.2, 0.2]) and len(rates) == 1347 // 64


# ---------------------------------------------------------------- 6.6 unused parameters

def test_unused_parameters_mix_in_the_loop_stop_ddp_and_are_zeros_with_find_unused(two_ranks):
    lines = two_ranks["unused"]
    assert "a.weight's and b.weight's mixed: True" in lines[1]
    assert ("not averaged): True; the next forward raises RuntimeError: Expected to have finished reduction in the "
            "prior iteration before starting a new one.") in lines[2]
    assert lines[3].endswith("divided by 2: True")


# ---------------------------------------------------------------- section 5: your loop against DDP

def script_function(name, **namespace):
    """The training script's top-level function `name`, compiled alone in a namespace holding `namespace`."""
    node = next(node for node in ast.parse(ch08.TRAINING_SCRIPT).body
                if isinstance(node, ast.FunctionDef) and node.name == name)
    exec(compile(ast.Module([node], type_ignores=[]), "train_ddp.py", "exec"), namespace)
    return namespace[name]


def test_the_loop_calls_all_reduce_once_per_tensor_and_ddp_once_per_bucket():
    """The counts section 5 quotes: 6 and 50 calls per step for the wide and the deep network with the loop, 2 with
    DDP (its first bucket of about 1 MB, then one of up to 25 MB), for the same bytes."""
    calls = script_function("ddp_calls", DistributedDataParallel=DistributedDataParallel, mlp=mlp, torch=torch,
                            DEVICE=CPU)

    def work(rank):
        x, y = torch.randn(8, 64), torch.randint(0, 10, (8,))
        counted, real = [], dist.all_reduce
        dist.all_reduce = lambda tensor, *args, **kwargs: counted.append(tensor.numel()) or real(tensor)
        found = {}
        try:
            for sizes in ([64, 1024, 1024, 10], [64] + [128] * 24 + [10]):
                model = mlp(sizes, dtype=torch.float32)
                F.cross_entropy(model(x), y).backward()
                counted.clear()
                ch08.average_gradients(list(model.parameters()))
                found[len(sizes) - 1] = (len(counted), sum(counted), sum(p.numel() for p in model.parameters()))
        finally:
            dist.all_reduce = real
        return found, [calls([64, 1024, 1024, 10], x, y), calls([64] + [128] * 24 + [10], x, y)]

    loop, ddp = on_ranks(2, work)[0]
    assert [loop[3][0], loop[25][0]] == [6, 50]
    assert all(reduced == parameters for _, reduced, parameters in loop.values())  # every number, once
    assert ddp == [2, 2]


# ---------------------------------------------------------------- section 1: gloo's average

def test_gloo_averages_floats_in_this_torch_and_refuses_integers():
    """Section 1: gloo's all_reduce has ReduceOp.AVG here (torch 2.6's raised "Cannot use ReduceOp.AVG with
    Gloo"), the mean over the ranks; not for integer tensors."""
    def work(rank):
        floats, integers = torch.full((3,), 1.0 + rank), torch.full((3,), 1 + rank)
        dist.all_reduce(floats, op=dist.ReduceOp.AVG)
        try:
            dist.all_reduce(integers, op=dist.ReduceOp.AVG)
            refused = ""
        except RuntimeError as error:
            refused = str(error)
        return floats, refused

    for floats, refused in on_ranks(2, work):
        assert floats.tolist() == [1.5, 1.5, 1.5]
        assert "can't be cast to the desired output type Long" in refused


# ---------------------------------------------------------------- the launched script, on 3 and 4 ranks

@pytest.mark.slow
@pytest.mark.parametrize("world", [3, 4])
def test_the_practices_script_on_3_and_4_ranks(tmp_path, world):
    """The script the notebook launches, on world sizes other than its 2: every claim True, each digit counted once
    however many the padding repeats. 17 s for 3 ranks and 23 s for 4 on 2 cores at load 8 (no quiet figure yet),
    mostly each rank's start: importing torch, scikit-learn and what DDP's first construction imports."""
    write_script(tmp_path)
    (tmp_path / "practices.py").write_text(ch08.practice_script())
    out = launching.launch(tmp_path / "practices.py", world,
                           ["checkpoint", "join", "batchnorm", "evaluate", "lr", "unused"], timeout=180)
    lines = out.splitlines()
    assert lines[0] == f"gloo on cpu (rank 0 of {world}): no CUDA GPU on this machine", out
    assert len(claims(lines)) == 9 and set(claims(lines)) == {"True"}, out
    assert "nan" not in out and "False" not in out
    padded = world * math.ceil(449 / world) - 449
    assert f"449 test digits on {world} ranks, {math.ceil(449 / world)} each, {padded} of them read twice" in out
    assert f"rank r has 3 + r batches of 16 rows ({', '.join(str(3 + r) for r in range(world))})" in out
    assert f"{world} ranks x 32 rows, lr {world * 0.1:g}:" in out
    assert (tmp_path / "checkpoint.pt").exists()
