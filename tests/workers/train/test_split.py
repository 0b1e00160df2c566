"""The gold set's 80/20 split: seeded, order-independent, stored by the app as two lists."""

import pytest

from workers.train import split_gold


def test_same_ids_and_seed_give_the_same_split_in_any_order():
    ids = list(range(100, 150))
    train, test = split_gold(ids, seed=3)
    assert split_gold(list(reversed(ids)), seed=3) == (train, test)
    assert len(train) == 40 and len(test) == 10
    assert sorted(train + test) == ids and not set(train) & set(test)
    assert train == sorted(train) and test == sorted(test)


def test_another_seed_gives_another_split():
    ids = [f"asset-{n}" for n in range(30)]
    assert split_gold(ids, seed=1)[1] != split_gold(ids, seed=2)[1]


def test_both_parts_are_non_empty_from_two_ids_and_fractions_are_checked():
    assert split_gold([7, 8], seed=0, train_fraction=0.99) in [([7], [8]), ([8], [7])]
    assert split_gold([5], seed=0) == ([5], [])
    with pytest.raises(ValueError, match="train_fraction"):
        split_gold([1, 2, 3], seed=0, train_fraction=1.0)
