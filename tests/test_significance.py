"""kayan.evaluation.significance on synthetic ANERcorp-sized counts: sanity, power, reproducibility.

Their speed on ANERcorp is measured by scripts/bench_evaluate.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from kayan.evaluation.metrics import sentence_counts
from kayan.evaluation.significance import approximate_randomization, bootstrap_f1, micro_f1, paired_bootstrap

N_SENTENCES, N_TYPES = 925, 4  # the ANERcorp test split


def synthetic(recall, *, seed, gold=None, false_rate=0.15):
    """Counts (n, types, 3) of a system finding each gold entity with probability ``recall``."""
    rng = np.random.default_rng(seed)
    if gold is None:
        gold = rng.poisson(0.6, size=(N_SENTENCES, N_TYPES))
    tp = rng.binomial(gold, recall)
    predicted = tp + rng.poisson(false_rate, size=gold.shape)
    return np.stack([tp, predicted, gold], axis=-1)


@pytest.fixture(scope="module")
def systems():
    gold = np.random.default_rng(0).poisson(0.6, size=(N_SENTENCES, N_TYPES))
    return {
        "good": synthetic(0.85, seed=1, gold=gold),
        "worse": synthetic(0.75, seed=2, gold=gold),
        "twin": synthetic(0.85, seed=3, gold=gold),
    }


def test_micro_f1_from_counts():
    assert micro_f1(np.array([0, 0, 0])) == 0.0
    assert micro_f1(np.array([2, 2, 2])) == 1.0
    assert micro_f1(np.array([[1, 2, 2], [0, 3, 0]])).tolist() == [0.5, 0.0]


def test_identical_systems(systems):
    a = systems["good"]
    boot = paired_bootstrap(a, a.copy(), samples=300)
    rand = approximate_randomization(a, a.copy(), samples=300)
    assert boot["delta"] == 0.0 and rand["delta"] == 0.0
    assert boot["p_value"] == boot["p_value_one_sided"] == rand["p_value"] == 1.0


def test_clearly_better_system_is_significant(systems):
    boot = paired_bootstrap(systems["good"], systems["worse"], samples=1000)
    rand = approximate_randomization(systems["good"], systems["worse"], samples=1000)
    assert boot["delta"] > 0.03
    assert boot["p_value"] < 0.01 and boot["p_value_one_sided"] < 0.01
    assert rand["p_value"] < 0.01
    assert rand["p_value"] >= 1 / 1001  # add-one estimate: never 0


def test_equally_good_systems_are_not_significant(systems):
    boot = paired_bootstrap(systems["good"], systems["twin"], samples=1000)
    rand = approximate_randomization(systems["good"], systems["twin"], samples=1000)
    assert abs(boot["delta"]) < 0.02
    assert boot["p_value"] > 0.05 and rand["p_value"] > 0.05


def test_swapping_systems_negates_delta_and_keeps_two_sided_p(systems):
    ab = paired_bootstrap(systems["good"], systems["worse"], samples=200, seed=5)
    ba = paired_bootstrap(systems["worse"], systems["good"], samples=200, seed=5)
    assert ab["delta"] == pytest.approx(-ba["delta"])
    assert ab["p_value"] == ba["p_value"]
    assert ab["f1_a"] == ba["f1_b"]


def test_interval_contains_observed_f1_and_narrows_with_data(systems):
    counts = systems["good"]
    observed = micro_f1(counts.sum(axis=(0, 1)))
    low, high = bootstrap_f1(counts)
    assert low < observed < high
    assert 0.01 < high - low < 0.1
    low90, high90 = bootstrap_f1(counts, confidence=0.9)
    assert low <= low90 < high90 <= high


def test_reproducible_for_a_seed(systems):
    a, b = systems["good"], systems["worse"]
    assert bootstrap_f1(a, seed=7) == bootstrap_f1(a, seed=7)
    assert bootstrap_f1(a, seed=7) != bootstrap_f1(a, seed=8)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert approximate_randomization(a, b, seed=7) == approximate_randomization(a, b, seed=7)


def test_counts_from_tags():
    gold = [["B-LOC", "O"], ["B-PERS", "I-PERS"], ["O", "B-ORG"]] * 10
    pred = [["B-LOC", "O"], ["B-PERS", "O"], ["O", "B-ORG"]] * 10
    counts = sentence_counts(gold, pred)
    low, high = bootstrap_f1(counts, samples=200)
    assert low <= micro_f1(counts.sum(axis=(0, 1))) <= high


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_f1(np.zeros((3, 2))), "shape"),
        (lambda: bootstrap_f1(np.zeros((0, 2, 3))), "no sentences"),
        (lambda: bootstrap_f1(np.zeros((2, 2, 3)), confidence=1.5), "confidence"),
        (lambda: bootstrap_f1(np.zeros((2, 2, 3)), samples=0), "samples"),
        (lambda: paired_bootstrap(np.zeros((2, 1, 3)), np.zeros((3, 1, 3))), "different sentences"),
        (lambda: approximate_randomization(np.zeros((2, 1, 3)), np.zeros((3, 1, 3))), "different sentences"),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
