"""The simple-generator attack on a tiny synthetic classifier: frozen C, batched == one by one, valid pixels."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tasks.adversarial.generator import (
    AttackResult,
    GeneratorConfig,
    PairImages,
    PairResult,
    attack,
    make_pairs,
    tile_grid,
)

SHAPE = (6, 6, 1)


def tiny_classifier() -> keras.Model:
    """A small CNN with BatchNorm and Dropout: the layers whose state a careless attack would change."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    # Wide output weights: every class is reachable within the [0, 1] pixel box.
    wide = keras.initializers.RandomNormal(0, 0.5)
    outputs = keras.layers.Dense(10, activation="softmax", kernel_initializer=wide)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    # A few steps so BatchNorm's moving statistics and Adam's slots are not at their initial values.
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(size=(64, *SHAPE)).astype("float32"), rng.integers(0, 10, 64), epochs=2, verbose=0)
    return model


def images(count: int) -> np.ndarray:
    return np.random.default_rng(1).uniform(size=(count, *SHAPE)).astype("float32")


FAST = GeneratorConfig(confidence=0.6, max_rounds=150, generator_lr=1e-3, composite_lr=5e-2, snapshot_every=5)


def test_classifier_weights_are_bit_identical_after_an_attack():
    classifier = tiny_classifier()
    before = [w.numpy().copy() for w in classifier.weights]
    pairs = make_pairs([0, 1], 10)
    result = attack(classifier, images(2)[[0] * 10 + [1] * 10], pairs.targets, FAST)
    after = [w.numpy() for w in classifier.weights]
    assert len(before) == len(after) and len(before) > 4
    for a, b in zip(before, after, strict=True):
        assert a.tobytes() == b.tobytes()
    assert classifier.trainable
    # The attack did move the images: identical weights are not the result of doing nothing.
    assert result.summary()["successes"] >= 15


def test_batched_equals_one_pair_at_a_time(monkeypatch):
    import tasks.adversarial.generator as simple_generator

    shrinks = []
    keep = simple_generator._Batch.keep
    monkeypatch.setattr(simple_generator._Batch, "keep",
                        lambda self, *args: shrinks.append(len(self.active)) or keep(self, *args))
    classifier = tiny_classifier()
    originals = images(8)
    targets = np.arange(8) + 1
    batched = attack(classifier, originals, targets, FAST)
    # The batch shrank (with the optimizer state of the pairs it kept) before the last pairs finished.
    assert shrinks and shrinks[0] == 8
    single = attack(classifier, originals, targets, GeneratorConfig(**{**FAST.__dict__, "batched": False}))
    assert [p.rounds for p in batched.pairs] == [p.rounds for p in single.pairs]
    assert [p.success for p in batched.pairs] == [p.success for p in single.pairs]
    assert len({p.rounds for p in batched.pairs}) > 3
    np.testing.assert_allclose(batched.images, single.images, atol=1e-5)
    np.testing.assert_allclose(batched.confidence_history, single.confidence_history, atol=1e-5)


def test_pixels_stay_in_range_and_rows_describe_the_images():
    classifier = tiny_classifier()
    originals = images(2)
    targets = np.array([3, 8])
    result = attack(classifier, originals, targets, FAST, sample_ids=[40, 41])
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    for _, snapshot in result.snapshots:
        assert snapshot.min() >= 0.0 and snapshot.max() <= 1.0
    probabilities = classifier.predict_on_batch(result.images)
    for p, row in enumerate(result.pairs):
        assert row.sample_index == 40 + p and row.target == targets[p]
        assert row.confidence == pytest.approx(float(probabilities[p, targets[p]]), abs=1e-5)
        delta = result.images[p] - originals[p]
        assert row.l2 == pytest.approx(float(np.linalg.norm(delta)), rel=1e-5)
        assert row.linf == pytest.approx(float(np.abs(delta).max()), rel=1e-5)
        if row.success:
            assert row.confidence >= FAST.confidence - 1e-4
            assert result.confidence_history[row.rounds, p] >= FAST.confidence


def test_a_pair_that_cannot_reach_the_target_says_why():
    classifier = tiny_classifier()
    config = GeneratorConfig(confidence=0.999, max_rounds=3, composite_lr=1e-3)
    result = attack(classifier, images(1), np.array([4]), config)
    row = result.pairs[0]
    assert not row.success and row.rounds == 3
    assert "3 rounds" in row.why and "--max-rounds" in row.why
    assert result.summary()["success_rate"] == 0.0


def test_one_pair_generator_is_a_dense_layer_on_the_input_one():
    original = images(1)
    layer = PairImages(original)
    output = layer(np.ones((1, 1), "float32"))
    dense = keras.layers.Dense(int(np.prod(SHAPE)), use_bias=False)
    dense.build((1, 1))
    dense.kernel.assign(layer.kernel.numpy())
    np.testing.assert_array_equal(np.asarray(output).ravel(), np.asarray(dense(np.ones((1, 1), "float32"))).ravel())
    np.testing.assert_array_equal(np.asarray(output)[0], original[0])


def test_pairs_and_grid_layout():
    pairs = make_pairs([7, 3], 10)
    assert list(pairs.samples[:10]) == [7] * 10 and list(pairs.samples[10:]) == [3] * 10
    assert list(pairs.targets) == list(range(10)) * 2
    grid = tile_grid(images(2), np.zeros((20, *SHAPE), "float32"), 10)
    assert grid.shape == (2 * 6, 11 * 6, 1)
    np.testing.assert_array_equal(grid[6:12, :6], images(2)[1])


def test_summary_leaves_out_own_class_pairs_and_gives_the_maximum():
    def pair(target, rounds, l2, linf, success=True):
        return PairResult(0, 3, target, success, 0.95, target, 0.95, rounds, l2, linf)

    pairs = [pair(3, 0, 0.0, 0.0), pair(1, 10, 1.0, 0.1), pair(2, 30, 3.0, 0.5), pair(4, 20, 2.0, 0.2),
             pair(5, 50, 9.0, 0.9, success=False)]
    summary = AttackResult(pairs, np.zeros((5, 1)), np.zeros((1, 5))).summary()
    assert summary["pairs"] == 4 and summary["own_class_pairs"] == 1 and summary["successes"] == 3
    assert summary["success_rate"] == 0.75
    assert (summary["median_rounds"], summary["max_rounds"]) == (20, 30)
    assert (summary["median_l2"], summary["max_l2"]) == (2.0, 3.0)
    assert (summary["median_linf"], summary["max_linf"]) == (0.2, 0.5)
