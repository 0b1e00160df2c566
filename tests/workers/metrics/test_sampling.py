"""The evaluation set comes only from frames outside the gold set; leakage is refused by name."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.metrics.sampling import LeakageError, check_no_leakage, sample_eval_set


@settings(max_examples=100, deadline=None)
@given(
    candidates=st.lists(st.integers(min_value=0, max_value=400), max_size=300),
    gold=st.sets(st.integers(min_value=0, max_value=400), max_size=100),
    n=st.integers(min_value=1, max_value=350),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_sample_never_touches_the_gold_set_and_takes_what_is_there(candidates, gold, n, seed):
    sample = sample_eval_set(candidates, gold, n=n, seed=seed)
    pool = set(candidates) - gold
    assert set(sample.keys) <= pool and len(sample.keys) == len(set(sample.keys)) == min(n, len(pool))
    assert (sample.available, sample.excluded_gold, sample.requested) == (len(pool), len(set(candidates) & gold), n)
    check_no_leakage(sample.keys, gold)  # must not raise
    shuffled = list(candidates)
    random.Random(seed).shuffle(shuffled)
    assert sample_eval_set(shuffled, gold, n=n, seed=seed).keys == sample.keys  # input order does not matter


def test_paper_setting_300_of_the_frames_outside_the_gold_set():
    frames = [f"frame-{index:04d}" for index in range(2161)]
    gold = frames[::7]  # 309 gold frames
    sample = sample_eval_set(frames, gold, n=300, seed=42)
    assert len(sample.keys) == 300 and not set(sample.keys) & set(gold)
    assert sample.keys == sorted(sample.keys) and sample.keys == sample_eval_set(frames, gold, 300, seed=42).keys
    assert sample.keys != sample_eval_set(frames, gold, n=300, seed=43).keys


def test_leakage_is_refused_with_the_overlapping_keys_listed():
    with pytest.raises(LeakageError, match=r"2 evaluation frame\(s\) are in the gold set: 3, 8\.") as caught:
        check_no_leakage([1, 8, 3, 5], gold_keys=[3, 8, 9])
    assert caught.value.overlap == [3, 8] and isinstance(caught.value, ValueError)
    with pytest.raises(LeakageError, match="and 5 more"):
        check_no_leakage(range(25), range(100))


def test_n_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        sample_eval_set([1, 2], [], n=0)
