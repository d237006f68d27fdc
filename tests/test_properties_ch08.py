"""Property-based differential tests for chapter 08's sampler: the reference and every registered alternative
against torch.utils.data.DistributedSampler on any dataset size, world size, rank, epoch, seed, shuffle and
drop_last; and what makes a sampler distributed: every rank the same count, the ranks' parts disjoint (up to the
padding) and together the whole epoch."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler

from autograder.learner import registry
from solutions import ch08_distributed as ch08
from tests import strategies as s

SAMPLERS = [pytest.param(cls, id=cls.__name__) for cls in
            (ch08.ShardedSampler, *registry.get("ch08.ShardedSampler").alternatives)]
settings = st.fixed_dictionaries({"n": st.integers(0, 200), "world": st.integers(1, 9), "epoch": st.integers(0, 50),
                                  "seed": st.integers(0, 2**31), "shuffle": st.booleans(),
                                  "drop_last": st.booleans()})


@pytest.mark.parametrize("cls", SAMPLERS)
@s.budget(60)
@given(settings)
def test_every_rank_gets_what_distributed_sampler_gives_it(cls, c):
    for rank in range(c["world"]):
        mine = cls(range(c["n"]), c["world"], rank, shuffle=c["shuffle"], seed=c["seed"], drop_last=c["drop_last"])
        theirs = DistributedSampler(range(c["n"]), num_replicas=c["world"], rank=rank, shuffle=c["shuffle"],
                                    seed=c["seed"], drop_last=c["drop_last"])
        mine.set_epoch(c["epoch"])
        theirs.set_epoch(c["epoch"])
        assert len(mine) == len(theirs)
        assert list(mine) == list(theirs)


@s.budget(60)
@given(settings)
def test_the_ranks_share_out_one_epoch(c):
    n, world = c["n"], c["world"]
    shards = []
    for rank in range(world):
        sampler = ch08.ShardedSampler(range(n), world, rank, shuffle=c["shuffle"], seed=c["seed"],
                                      drop_last=c["drop_last"])
        sampler.set_epoch(c["epoch"])
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    assert len({len(shard) for shard in shards}) == 1  # the same number of steps on every rank
    everything = sorted(i for shard in shards for i in shard)
    if c["drop_last"]:
        assert len(set(everything)) == len(everything) == world * (n // world)  # disjoint, the rest left out
    else:
        assert set(everything) == set(range(n)) and len(everything) == world * -(-n // world)
