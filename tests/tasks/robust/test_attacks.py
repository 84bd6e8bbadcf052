"""The L-infinity attacks on a small softmax model and synthetic images: budgets, ranges, strength."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import UserError
from tasks.robust.attacks import (
    AttackConfig,
    accuracy_under_attack,
    attack_loss,
    distances,
    loss_gradient,
    perturb,
    robust_mask,
    strong_attacks,
    worst_case_accuracy,
)


def images(count=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(count, 8, 8, 1)).astype("float32")
    # Labels follow the mean brightness of the left half against the right: learnable, attackable.
    y = (x[:, :, :4].mean(axis=(1, 2, 3)) > x[:, :, 4:].mean(axis=(1, 2, 3))).astype("int64")
    return x, y


def trained_model(x, y):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=40, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def setting():
    keras.utils.set_random_seed(0)
    x, y = images()
    return trained_model(x, y), x, y


@pytest.mark.parametrize("config", [AttackConfig.fgsm(0.1), AttackConfig.fast(0.1), AttackConfig.pgd(0.1, steps=5)],
                         ids=["fgsm", "fgsm-rs", "pgd"])
def test_examples_stay_in_the_ball_and_the_pixel_range(setting, config):
    model, x, y = setting
    adversarial = perturb(model, x, y, config).numpy()
    assert np.abs(adversarial - x).max() <= 0.1 + 1e-6
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    assert np.abs(adversarial - x).max() > 0.05


def test_fgsm_is_one_signed_gradient_step(setting):
    model, x, y = setting
    gradient = loss_gradient(model, tf.constant(x), tf.constant(y)).numpy()
    expected = np.clip(x + 0.1 * np.sign(gradient), 0, 1)
    np.testing.assert_allclose(perturb(model, x, y, AttackConfig.fgsm(0.1)).numpy(), expected, atol=1e-6)


def test_pgd_is_stronger_than_fgsm_and_both_beat_clean(setting):
    model, x, y = setting
    clean = accuracy_under_attack(model, x, y, None)
    fgsm = accuracy_under_attack(model, x, y, AttackConfig.fgsm(0.08))
    pgd = accuracy_under_attack(model, x, y, AttackConfig.pgd(0.08, steps=20))
    assert clean > 0.9
    assert pgd <= fgsm < clean


def test_clean_accuracy_matches_the_model_predictions(setting):
    model, x, y = setting
    expected = float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())
    assert accuracy_under_attack(model, x, y, None, batch_size=10) == pytest.approx(expected)


def test_epsilon_tensor_overrides_the_budget_and_scales_the_step(setting):
    model, x, y = setting
    adversarial = perturb(model, x, y, AttackConfig.fgsm(0.2), epsilon=tf.constant(0.05)).numpy()
    assert np.abs(adversarial - x).max() == pytest.approx(0.05, abs=1e-6)


def test_attack_traces_inside_tf_function(setting):
    model, x, y = setting
    config = AttackConfig.pgd(0.1, steps=3)
    compiled = tf.function(lambda a, b: perturb(model, a, b, config))
    adversarial = compiled(tf.constant(x), tf.constant(y)).numpy()
    assert np.abs(adversarial - x).max() <= 0.1 + 1e-6


def test_distances_per_example():
    clean = np.zeros((2, 2, 2, 1), "float32")
    adversarial = clean.copy()
    adversarial[0, 0, 0, 0] = 0.3
    adversarial[1] = 0.1
    result = distances(clean, adversarial)
    np.testing.assert_allclose(result["linf"], [0.3, 0.1], atol=1e-6)
    np.testing.assert_allclose(result["l2"], [0.3, 0.2], atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [({"method": "cw"}, "unknown"), ({"epsilon": 2.0}, "--epsilon"),
                                             ({"steps": 0}, "steps")])
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        AttackConfig(**kwargs)


def test_describe_names_the_attack():
    assert AttackConfig.pgd(0.3, 40, 0.01).describe() == "PGD-40 (eps 0.3, step 0.01, random start)"
    assert AttackConfig.fast(0.1).step_size == pytest.approx(0.125)


def test_margin_loss_is_the_best_other_logit_minus_the_true_one(setting):
    model, x, y = setting
    hidden, last = model.layers[0](x), model.layers[-1]
    logits = (model.layers[1](hidden).numpy() @ last.kernel.numpy()) + last.bias.numpy()
    expected = logits[np.arange(len(y)), 1 - y] - logits[np.arange(len(y)), y]
    np.testing.assert_allclose(attack_loss(model(x), tf.constant(y), "margin").numpy(), expected, rtol=1e-4, atol=1e-4)


def test_margin_loss_pgd_breaks_images(setting):
    model, x, y = setting
    margin = accuracy_under_attack(model, x, y, AttackConfig.pgd(0.08, steps=20, loss="margin"))
    assert margin < accuracy_under_attack(model, x, y, None) - 0.2


def test_worst_case_takes_every_image_at_its_weakest(setting):
    model, x, y = setting
    attacks = (AttackConfig.fgsm(0.04), AttackConfig.fgsm(0.08))
    survived = model.predict(x, verbose=0).argmax(axis=1) == y
    for attack in attacks:
        survived &= model.predict(perturb(model, x, y, attack), verbose=0).argmax(axis=1) == y
    assert worst_case_accuracy(model, x, y, attacks, batch_size=16) == pytest.approx(survived.mean())
    assert survived.mean() <= min(accuracy_under_attack(model, x, y, a) for a in attacks)


def test_restarts_only_remove_images_and_an_empty_batch_is_fine(setting):
    model, x, y = setting
    clean = model.predict(x, verbose=0).argmax(axis=1) == y
    mask = tf.function(lambda a, b: robust_mask(model, a, b, strong_attacks(0.05, steps=5, restarts=3)))
    robust = mask(tf.constant(x), tf.constant(y)).numpy()
    assert not (robust & ~clean).any() and robust.sum() < clean.sum()
    assert mask(tf.constant(x[:0]), tf.constant(y[:0])).numpy().shape == (0,)


def test_strong_attacks_describe_restarts_and_loss():
    ce, margin = strong_attacks(0.3)
    assert ce.describe() == "PGD-50 x 10 restarts (eps 0.3, step 0.015, random start)"
    assert margin.describe().endswith("margin loss)")
    with pytest.raises(UserError, match="restarts"):
        AttackConfig.pgd(0.3, 10, restarts=0)
    with pytest.raises(UserError, match="loss"):
        AttackConfig.pgd(0.3, 10, loss="hinge")


def test_trades_adversary_stays_in_the_ball_and_moves_the_prediction_away_from_the_clean_one(setting):
    from tasks.robust.attacks import trades_perturb

    model, x, y = setting
    clean = model(x, training=False)
    adversarial = trades_perturb(model, x, clean, 0.1, steps=5, step_size=0.03)
    assert float(tf.reduce_max(tf.abs(adversarial - x))) <= 0.1 + 1e-6
    assert float(tf.reduce_min(adversarial)) >= 0 and float(tf.reduce_max(adversarial)) <= 1
    divergence = float(tf.reduce_mean(keras.losses.kl_divergence(clean, model(adversarial, training=False))))
    assert divergence > 1e-4  # the clean batch against itself has none
