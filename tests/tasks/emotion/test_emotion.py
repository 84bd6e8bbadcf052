"""The emotion task on tiny synthetic FER2013 files: metric, weights, HyperModel, run, export, search, CLI."""

from __future__ import annotations

import json
import shutil
import sys

import keras
import keras_tuner
import numpy as np
import pytest

from common.errors import UserError
from data.datasets import FER_CLASSES
from tasks.emotion.config import EmotionConfig
from tasks.emotion.evaluation import TFLiteClassifier, class_report
from tasks.emotion.model import EmotionHyperModel, FaceCrop, MacroF1, class_weights, inference_model, make_augmentation
from tasks.emotion.search import SearchBudget, distributed_role
from tasks.emotion.task import EmotionTask, learning_rate_factor
from tests.conftest import require_data
from tests.tensorboard_events import read_tags
from trainer import Trainer

# A small network keeps each synthetic fit to a second or two.
SMALL = {"blocks": 3, "filters": 16, "convs_per_block": 1}


def write_fer_npz(directory, per_split=(64, 21, 21), seed=0, copied=7):
    """A FER2013-shaped npz whose label is readable from the image (a bright square per class);
    the first ``copied`` PrivateTest faces are byte copies of Training faces, as in FER2013."""
    rng = np.random.default_rng(seed)
    xs, ys, usages = [], [], []
    for usage, count in zip(("Training", "PublicTest", "PrivateTest"), per_split, strict=True):
        y = np.arange(count) % 7
        x = rng.integers(0, 60, size=(count, 48, 48)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 6 * label:6 * label + 6, 10:30] = 255
        if usage == "PrivateTest":
            x[:copied] = xs[0][:copied]
        xs.append(x), ys.append(y.astype(np.uint8)), usages.append(np.full(count, usage))
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "fer2013.npz", x=np.concatenate(xs), y=np.concatenate(ys),
                        usage=np.concatenate(usages))
    return directory


def small_hyperparameters():
    hp = keras_tuner.HyperParameters()
    for name, value in SMALL.items():
        hp.Fixed(name, value)
    return hp


def make_task(tmp_path, **options):
    task = EmotionTask(EmotionConfig(export_dir=str(tmp_path / "models"), batch_size=16, **options))
    task.data_dir = str(write_fer_npz(tmp_path / "data"))
    return task


# --- metric, weights, model ----------------------------------------------------------------------
def test_macro_f1_metric_matches_the_per_class_report():
    y_true = np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 1])
    y_pred_labels = np.array([0, 1, 1, 2, 2, 0, 3, 4, 6, 6, 5, 1])
    metric = MacroF1()
    metric.update_state(y_true, keras.ops.one_hot(y_pred_labels, 7))
    confusion = metric.confusion.numpy()
    assert confusion.sum() == len(y_true) and confusion[2, 0] == 1
    report = class_report(confusion, FER_CLASSES)
    f1 = [2 * np.sum((y_true == c) & (y_pred_labels == c)) / (np.sum(y_true == c) + np.sum(y_pred_labels == c))
          for c in range(7)]
    assert float(metric.result()) == pytest.approx(np.mean(f1), abs=1e-6)
    assert report["macro_f1"] == pytest.approx(np.mean(f1), abs=1e-6)
    assert report["accuracy"] == pytest.approx(np.mean(y_true == y_pred_labels))
    assert report["per_class"]["fear"]["recall"] == pytest.approx(2 / 3)


def test_class_weights_lift_rare_classes_and_average_one():
    labels = np.array([3] * 160 + [1] * 10 + [0] * 40)
    weights = class_weights(labels, power=0.5)
    assert weights[labels].mean() == pytest.approx(1.0, rel=1e-5)
    assert weights[1] / weights[3] == pytest.approx(4.0, rel=1e-5)  # sqrt(160 / 10)
    assert weights[2] == 0.0  # absent classes get no weight


def test_hypermodel_defaults_and_searched_values_build():
    hp = keras_tuner.HyperParameters()
    model = EmotionHyperModel().build(hp)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert hp.get("blocks") == 4 and hp.get("convs_per_block") == 2 and hp.get("crop_size") == 44
    # The recipe: 4 blocks of 2 convolutions from 32 filters, 1.18M weights; SGD with real decay.
    assert 1_170_000 < model.count_params() < 1_185_000
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.nesterov
    assert model.optimizer.weight_decay == pytest.approx(5e-3) and model.loss.label_smoothing == 0.1
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 8
    small = EmotionHyperModel().build(small_hyperparameters())
    assert small.count_params() < model.count_params() / 10


def test_config_flags_set_the_default_point_of_the_search():
    hp = keras_tuner.HyperParameters()
    EmotionHyperModel(defaults=EmotionConfig(crop_size=42, learning_rate=0.02, weight_decay=1e-3)).build(hp)
    assert (hp.get("crop_size"), hp.get("learning_rate"), hp.get("weight_decay")) == (42, 0.02, 1e-3)


def test_face_crop_draws_an_offset_per_face_in_training_and_takes_the_centre_at_inference():
    faces = np.arange(8 * 48 * 48, dtype="float32").reshape(8, 48, 48, 1)
    crop = FaceCrop(44, seed=1)
    centre = crop(faces, training=False).numpy()
    np.testing.assert_array_equal(centre, faces[:, 2:46, 2:46])
    cropped = crop(faces, training=True).numpy()
    assert cropped.shape == (8, 44, 44, 1)
    offsets = []
    for face, out in zip(faces, cropped, strict=True):  # every output is an exact, unresized window
        top, left = divmod(int(out[0, 0, 0] - face[0, 0, 0]), 48)
        np.testing.assert_array_equal(out, face[top:top + 44, left:left + 44])
        offsets.append((top, left))
    assert len(set(offsets)) > 1  # not one offset for the whole batch, as keras.layers.RandomCrop


def test_ten_crop_averages_the_corners_the_centre_and_their_mirrors():
    model = EmotionHyperModel().build(small_hyperparameters())
    faces = np.random.default_rng(0).uniform(0, 1, (3, 48, 48, 1)).astype("float32")
    ten = inference_model(model, "ten-crop")
    assert ten.input_shape == (None, 48, 48, 1)
    network = keras.Model(model.get_layer("face_crop").output, model.output)
    views = [faces[:, top:top + 44, left:left + 44] for top, left in ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2))]
    views += [v[:, :, ::-1] for v in views]
    expected = np.mean([network(v).numpy() for v in views], axis=0)
    np.testing.assert_allclose(ten(faces).numpy(), expected, atol=1e-5)
    flip = inference_model(model, "flip")(faces).numpy()
    np.testing.assert_allclose(flip, (model(faces).numpy() + model(faces[:, :, ::-1]).numpy()) / 2, atol=1e-5)
    np.testing.assert_array_equal(inference_model(model, "none")(faces).numpy(), model(faces).numpy())


PLAIN_KERAS = """
import sys, numpy as np, keras
assert not any(m.split('.')[0] in {'tasks', 'trainer', 'common', 'callbacks', 'live', 'data'} for m in sys.modules)
model = keras.models.load_model(sys.argv[1])
faces = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(faces, verbose=0))
"""


@pytest.mark.parametrize("views", ["none", "ten-crop"])
def test_exported_graph_loads_in_plain_keras_with_the_same_outputs(tmp_path, views):
    import subprocess

    from trainer.export import save_model_atomic

    model = inference_model(EmotionHyperModel().build(small_hyperparameters()), views)
    faces = np.random.default_rng(1).uniform(0, 1, (4, 48, 48, 1)).astype("float32")
    path = save_model_atomic(model, tmp_path / "emotion.h5", include_optimizer=False)
    np.save(tmp_path / "faces.npy", faces)
    # A Python that imports nothing of this project (run outside the checkout, no sys.path entry to it).
    subprocess.run([sys.executable, "-c", PLAIN_KERAS, str(path), str(tmp_path / "faces.npy"),
                    str(tmp_path / "out.npy")], check=True, cwd=tmp_path, capture_output=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model(faces).numpy(), atol=1e-5)


def test_framing_augmentation_zooms_and_shifts_some_faces_and_leaves_others():
    faces = np.random.default_rng(2).uniform(0, 1, (64, 48, 48, 1)).astype("float32")
    keras.utils.set_random_seed(3)
    moved = np.asarray(make_augmentation(framing_zoom=0.25, framing_shift=0.1)(faces, training=True))
    mirrored = faces[:, :, ::-1]
    unchanged = [np.allclose(m, f) or np.allclose(m, r) for m, f, r in zip(moved, faces, mirrored, strict=True)]
    # Each of zoom and shift reaches half the faces: about a quarter escape both (and a flip).
    assert 4 <= sum(unchanged) <= 32
    assert np.asarray(make_augmentation(framing_zoom=0.25)(faces, training=False)).tolist() == faces.tolist()


def test_schedule_warms_up_then_anneals_once_to_the_floor():
    values = [learning_rate_factor(e / 10, 40, 2.0) for e in range(0, 400)]
    assert values[0] < 0.05 and learning_rate_factor(2.0, 40, 2.0) == pytest.approx(1.0)
    assert max(values) == pytest.approx(1.0) and learning_rate_factor(40, 40, 2.0) == pytest.approx(0.0, abs=1e-9)
    peak = values.index(max(values))
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1:], strict=False))  # one cosine, no restart
    assert learning_rate_factor(0.5, 4, 2.0) == pytest.approx(learning_rate_factor(0.5, 4, 1.0))  # warm-up <= 1/4


def test_batch_norm_statistics_keep_up_within_a_short_trial():
    """30 steps on one batch: the first layer's moving mean must be near the batch's own mean (with
    Keras's default momentum 0.99 it would have moved only 26% of the way, and a 5-epoch trial's
    inference-mode scores would trail its batch-statistics ones)."""
    model = EmotionHyperModel().build(small_hyperparameters())
    faces = np.random.default_rng(0).uniform(0, 1, (32, 48, 48, 1)).astype("float32")
    labels = np.arange(32) % 7
    conv, norm = (next(layer for layer in model.layers if isinstance(layer, kind))
                  for kind in (keras.layers.Conv2D, keras.layers.BatchNormalization))
    for _ in range(30):
        model.train_on_batch(faces, labels)
    batch_mean = keras.ops.convert_to_numpy(keras.ops.mean(conv(faces), axis=(0, 1, 2)))
    moving_mean = keras.ops.convert_to_numpy(norm.moving_mean)
    assert np.abs(moving_mean - batch_mean).max() < 0.1 * np.abs(batch_mean).max() + 1e-3


def test_config_rejects_bad_options():
    with pytest.raises(UserError, match="tuner 'grid' is unknown"):
        EmotionConfig(tuner="grid")
    with pytest.raises(UserError, match="--tune-minutes must be above 0, got 0; e.g. --tune-minutes 20$"):
        EmotionConfig(tune_minutes=0)
    with pytest.raises(UserError, match="--model weights.txt is not an .h5 or .keras model file"):
        EmotionConfig(model="weights.txt")
    with pytest.raises(UserError, match="does not apply to task emotion"):
        EmotionTask.from_options({"epsilon": 0.1})
    with pytest.raises(UserError, match="--crop-size must be at least 8 and at most 48, got 50"):
        EmotionConfig(crop_size=50)
    with pytest.raises(UserError, match="--weight-decay must be at least 0, got -0.1; e.g. --weight-decay 0.005"):
        EmotionConfig(weight_decay=-0.1)


# --- the whole job ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """One synthetic run shared by the tests that only read what it exported."""
    from trainer import TrainerConfig

    root = tmp_path_factory.mktemp("emotion")
    keras.utils.set_random_seed(0)
    task = make_task(root)
    task.hyperparameters = small_hyperparameters()
    trainer = Trainer(TrainerConfig(max_epochs=2, run_name="run", logdir=str(root / "logs"), progress="none"))
    task.run(trainer)
    return task, trainer, root


@pytest.fixture
def trained(trained_once, tmp_path):
    """The shared run's task and trainer, its models/ folder copied to this test's tmp_path."""
    task, trainer, root = trained_once
    shutil.copytree(root / "models", tmp_path / "models")
    return task, trainer


def test_run_selects_on_public_test_and_exports_card_h5_and_tflite(trained, tmp_path):
    task, trainer = trained
    models = tmp_path / "models"
    card = json.loads((models / "emotion.json").read_text())
    assert card["classes"] == list(FER_CLASSES) and card["input_shape"] == [48, 48, 1]
    assert {k: card["preprocessing"][k] for k in ("size", "grayscale", "scale", "crop_size")} == {
        "size": 48, "grayscale": True, "scale": 1 / 255, "crop_size": 44}
    assert card["tflite"] == "emotion.tflite" and card["seed"] == trainer.config.seed
    assert card["metrics"]["private_test_accuracy"] == pytest.approx(trainer.metrics["test_accuracy"])
    # The clean figure leaves out the 7 PrivateTest faces copied from Training, and only those.
    assert card["metrics"]["private_test_in_training"] == 7
    faces, labels = task.split("test")
    hits = keras.models.load_model(models / "emotion.h5", compile=False)(faces).numpy().argmax(1) == labels
    assert card["metrics"]["private_test_accuracy_not_in_training"] == pytest.approx(hits[7:].mean(), abs=1e-6)
    assert card["metrics"]["private_test_accuracy"] == pytest.approx(hits.mean(), abs=1e-6)
    best = json.loads((trainer.run_dir / "checkpoints/top/index.json").read_text())["kept"][0]
    assert card["metrics"]["public_test_accuracy"] == best["value"]
    assert list(card["data"]) == ["fer2013.npz"] and len(card["data"]["fer2013.npz"]) == 64
    assert (trainer.run_dir / "emotion.keras").exists() and (trainer.run_dir / "confusion_matrix.png").exists()
    assert "confusion_matrix" in read_tags(trainer.run_dir / "test").get("images", set())

    faces = task.split("test")[0][:4]
    keras_probs = keras.models.load_model(models / "emotion.h5", compile=False)(faces).numpy()
    tflite = TFLiteClassifier(models / "emotion.tflite")
    tflite_probs = np.stack([tflite(face[None]) for face in faces])
    # int8 weights (dynamic-range quantization) move the probabilities slightly, not the ranking.
    np.testing.assert_allclose(tflite_probs, keras_probs, atol=2e-2)
    assert card["tflite_quantization"] == "dynamic-range int8"
    assert 0.0 <= card["metrics"]["private_test_accuracy_tflite"] <= 1.0
    report = (trainer.run_dir / "report.md").read_text()
    assert "PrivateTest per class" in report and "| disgust |" in report


def test_test_with_exported_model_reproduces_the_card(trained, tmp_path, trainer_config):
    task, _ = trained
    keras.backend.clear_session()
    reloaded = EmotionTask.from_options({"model": str(tmp_path / "models" / "emotion.h5")})
    reloaded.data_dir = task.data_dir
    results = Trainer(trainer_config(run_name="test")).test(reloaded)
    card = json.loads((tmp_path / "models" / "emotion.json").read_text())
    assert results["accuracy"] == pytest.approx(card["metrics"]["private_test_accuracy"], abs=1e-6)
    assert results["macro_f1"] == pytest.approx(card["metrics"]["private_test_macro_f1"], abs=1e-6)
    assert results["accuracy_not_in_training"] == pytest.approx(
        card["metrics"]["private_test_accuracy_not_in_training"], abs=1e-6)


def test_test_time_augmentation_ships_inside_one_h5_with_the_single_network_beside(
        trained, tmp_path, trainer_config, monkeypatch):
    from tasks.emotion.__main__ import main

    task, _ = trained
    models = tmp_path / "models"
    single_card = json.loads((models / "emotion.json").read_text())
    faces = task.split("test")[0][:5]
    single = keras.models.load_model(models / "emotion.h5", compile=False)(faces).numpy()
    monkeypatch.setattr("tasks.emotion.evaluation.TTA_CHOICES", ("flip",))  # force a replacement
    assert main(["--test-time-augmentation", str(models / "emotion.h5"), "--data-dir", task.data_dir]) == 0
    card = json.loads((models / "emotion.json").read_text())
    assert card["test_time_augmentation"]["chosen"] == "flip"
    assert card["single_network"]["private_test_accuracy"] == single_card["metrics"]["private_test_accuracy"]
    assert card["flops_per_face"] == 2 * card["single_network"]["flops_per_face"] > 0
    assert card["commands"][-1].endswith("--test-time-augmentation " + str(models / "emotion.h5"))
    # One .h5 holds the averaged graph: the mean of the face's and its mirror image's probabilities.
    mirrored = keras.models.load_model(models / "emotion.h5", compile=False)
    single_mirror = TFLiteClassifier(models / "emotion.tflite")
    np.testing.assert_allclose(mirrored(faces[:1]).numpy()[0], single_mirror(faces[:1]), atol=2e-2)
    assert not np.allclose(mirrored(faces).numpy(), single, atol=1e-6)
    keras.backend.clear_session()
    reloaded = EmotionTask.from_options({"model": str(models / "emotion.h5")})
    reloaded.data_dir = task.data_dir
    results = Trainer(trainer_config(run_name="tta")).test(reloaded)
    assert results["accuracy"] == pytest.approx(card["metrics"]["private_test_accuracy"], abs=1e-6)
    # A model that already went through the selection is refused with one line and exit 2.
    assert main(["--test-time-augmentation", str(models / "emotion.h5"), "--data-dir", task.data_dir]) == 2


def test_live_model_is_the_single_network_with_its_own_card(trained, tmp_path):
    from tasks.emotion.__main__ import main

    task, _ = trained
    models = tmp_path / "models"
    assert main(["--live-model", str(models / "emotion.h5"), "--data-dir", task.data_dir]) == 0
    path = models / "emotion_live.h5"
    card = json.loads(path.with_suffix(".json").read_text())
    assert path.name == "emotion_live.h5" and card["tflite"] == "emotion_live.tflite"
    assert "test_time_augmentation" not in card and card["role"].startswith("the single network inside emotion.h5")
    live = keras.models.load_model(path, compile=False)
    assert live.input_shape == (None, 48, 48, 1)
    faces, labels = task.split("test")
    assert card["metrics"]["private_test_accuracy"] == pytest.approx(
        float(np.mean(live(faces).numpy().argmax(1) == labels)), abs=1e-6)
    assert card["commands"][-1].endswith("--live-model " + str(models / "emotion.h5"))


def test_a_worse_model_does_not_replace_the_shipped_one(trained, tmp_path, trainer_config):
    card_path = tmp_path / "models" / "emotion.json"
    card = json.loads(card_path.read_text())
    card["metrics"]["public_test_accuracy"] = 1.0
    card_path.write_text(json.dumps(card))
    keras.backend.clear_session()
    task = make_task(tmp_path)
    task.hyperparameters = small_hyperparameters()
    trainer = Trainer(trainer_config(max_epochs=1, run_name="worse"))
    task.run(trainer)
    assert json.loads(card_path.read_text())["metrics"]["public_test_accuracy"] == 1.0
    assert (trainer.run_dir / "emotion.h5").exists() and (trainer.run_dir / "emotion.json").exists()


def test_resume_keeps_the_public_test_record_and_a_fresh_run_drops_it(tmp_path, trainer_config):
    def fit(max_epochs, resume):
        keras.backend.clear_session()
        task = make_task(tmp_path)
        task.hyperparameters = small_hyperparameters()
        trainer = Trainer(trainer_config(max_epochs=max_epochs, run_name="r", resume=resume))
        trainer.fit(task)
        return task, trainer

    first, trainer = fit(1, resume=False)
    record = json.loads((trainer.run_dir / "checkpoints/top/index.json").read_text())["kept"][0]
    resumed, trainer = fit(3, resume=True)
    assert trainer.current_epoch == 3
    assert resumed._best["val_accuracy"] >= record["value"]
    fresh, trainer = fit(1, resume=False)
    assert fresh._best["epoch"] == 0
    assert json.loads((trainer.run_dir / "checkpoints/top/index.json").read_text())["kept"][0]["epoch"] == 0


def test_a_checkpoint_from_before_configure_callbacks_keeps_its_public_test_record():
    """Checkpoints written before the Trainer ran the task's ModelCheckpoint kept its record in the task's state."""
    task = EmotionTask()
    kept = [{"file": "epoch=002-step=000030-val_accuracy=0.4100.weights.h5", "value": 0.41, "epoch": 2, "step": 30,
             "metrics": {"val_accuracy": 0.41, "val_macro_f1": 0.3}}]
    task.load_state_dict({"checkpoint": {"kept": kept}})
    assert task._best == {"epoch": 2, "val_accuracy": 0.41, "val_macro_f1": 0.3}
    assert task.configure_callbacks() == [task.checkpoint] and task.state_dict() == {}


def test_a_model_of_another_task_is_refused_with_the_emotion_models_to_pass(tmp_path):
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(tmp_path / "m.h5")
    (tmp_path / "m.json").write_text(json.dumps({"task": "adversarial"}))
    with pytest.raises(UserError, match=r"m.h5 was made by `fit adversarial` \(its card says so\), not `fit emotion`; "
                                        r"pass --model with one of the shipped emotion models: models/emotion.h5"):
        EmotionTask.from_options({"model": str(tmp_path / "m.h5")}).build_model()


def test_missing_card_is_a_user_error(tmp_path):
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(tmp_path / "m.h5")
    task = EmotionTask.from_options({"model": str(tmp_path / "m.h5")})
    with pytest.raises(UserError, match="m.json is missing"):
        task.build_model()
    # Named before its card, with the shipped models to pass instead.
    with pytest.raises(UserError, match=r"model .*nope.h5 does not exist; pass --model with one of the shipped models"):
        EmotionTask.from_options({"model": str(tmp_path / "nope.h5")}).build_model()


# --- the search --------------------------------------------------------------------------------
class SmallHyperModel(EmotionHyperModel):
    """The real search space with the expensive choices pinned, so a trial takes a second."""

    def build(self, hp):
        for name, value in SMALL.items():
            hp.Fixed(name, value)
        return super().build(hp)


def search_task(tmp_path, **options):
    values = {"tune": True, "tuner": "random", "max_trials": 2, "tune_epochs": 1, "tune_seeds": 1, "tune_faces": 28}
    return make_task(tmp_path, **{**values, **options})


def test_search_trains_trials_through_the_trainer_measures_seed_spread_and_retrains_the_best(
        tmp_path, trainer_config, monkeypatch, capsys):
    monkeypatch.setattr("tasks.emotion.task.EmotionHyperModel", SmallHyperModel)
    task = search_task(tmp_path)
    trainer = Trainer(trainer_config(max_epochs=1, run_name="tuned"))
    task.run(trainer)
    search = trainer.run_dir / "search"
    # Each trial is a Trainer run: its own checkpoints, TensorBoard scalars and HParams, on the fixed subset.
    assert sorted(p.name for p in (search / "trials").iterdir()) == ["0", "1"]
    for trial in ("trials/0", "trials/1", "seeds/43"):
        assert list((search / trial / "checkpoints").glob("*")), trial
        assert "hparams" in read_tags(search / trial / "train")
        assert "epoch_accuracy" in read_tags(search / trial / "validation")["scalars"]
        assert json.loads((search / trial / "timing.json").read_text())["epochs"] == 1
    assert np.bincount(task.split("train")[1][task.tuning_indices()]).tolist() == [4] * 7
    # The first trial is the default point; its seed-42 score and the seed-43 rerun give the seed spread.
    first = json.loads((search / "trial_0" / "trial.json").read_text())
    assert first["hyperparameters"]["values"]["filters"] == SMALL["filters"]
    values = first["hyperparameters"]["values"]
    assert values["crop_size"] == 44 and values["dropout"] == 0.4
    signal = json.loads((search / "signal.json").read_text())
    seed_43 = json.loads((search / "seeds.json").read_text())["43"]
    assert signal["seed_scores"] == [round(first["score"], 4), round(seed_43, 4)]
    assert signal["trials"] == 2 and signal["trial_spread"] == round(signal["best"] - signal["worst"], 4)
    out = capsys.readouterr().out
    assert "Search trials by PublicTest" in out and "search: 2 trials; best" in out and "seed spread" in out
    # Said up front, then the pick's time once a trial epoch is measured.
    assert ("emotion --tune: 1) search with a 20-minute budget: up to 2 random trials of 1 epoch "
                          "on 28 faces, and 1 more seed of the default network; 2) the pick trained for 1 epoch") in out
    assert "estimate: the pick's 1 epoch on every Training face takes about" in out
    finished = [json.loads((search / f"trial_{i}" / "trial.json").read_text()) for i in (0, 1)]
    best = max(finished, key=lambda t: t["score"])
    assert task.hyperparameters.values["learning_rate"] == best["hyperparameters"]["values"]["learning_rate"]
    card = json.loads((tmp_path / "models" / "emotion.json").read_text())
    assert card["search"]["run"] == "tuned" and card["search"]["minutes"] == 20.0
    assert "Architecture search" in (trainer.run_dir / "report.md").read_text()

    # Rerunning the same command reloads the finished search instead of training new trials.
    keras.backend.clear_session()
    again = search_task(tmp_path)
    again.search(Trainer(trainer_config(max_epochs=1, run_name="tuned")))
    assert sorted(p.name for p in (search / "trials").iterdir()) == ["0", "1"]
    assert "Reloading Tuner" in capsys.readouterr().out

    # A search folder made for another search space is refused before KerasTuner reloads it.
    keras.backend.clear_session()
    other = search_task(tmp_path, tune_faces=56)
    with pytest.raises(UserError, match=r"another search space \(differs in tune_faces\)"):
        other.search(Trainer(trainer_config(max_epochs=1, run_name="tuned")))


def test_the_budget_stops_a_trial_at_an_epoch_end_keeps_it_and_starts_no_other(
        tmp_path, trainer_config, monkeypatch, capsys):
    monkeypatch.setattr("tasks.emotion.task.EmotionHyperModel", SmallHyperModel)
    ticks = iter(range(0, 10_000, 2))  # each look at the clock is 2 s later: the 0.1-minute budget ends in epoch 1
    monkeypatch.setattr(SearchBudget, "clock", staticmethod(lambda: next(ticks)))
    task = search_task(tmp_path, tune_epochs=3, tune_minutes=0.1)
    trainer = Trainer(trainer_config(max_epochs=1, run_name="budget"))
    assert task.search(trainer)
    search = trainer.run_dir / "search"
    assert sorted(p.name for p in (search / "trials").iterdir()) == ["0"]
    assert json.loads((search / "trials" / "0" / "timing.json").read_text())["epochs"] == 1
    assert json.loads((search / "trial_0" / "trial.json").read_text())["status"] == "COMPLETED"
    assert not (search / "seeds").exists()
    spent = json.loads((search / "budget.json").read_text())["spent_seconds"]
    assert spent >= 6
    assert "the search budget is spent; this trial ends here and is kept" in capsys.readouterr().out

    # The budget survives --resume: a rerun finds it spent and starts nothing new.
    keras.backend.clear_session()
    again = search_task(tmp_path, tune_epochs=3, tune_minutes=0.1)
    again.search(Trainer(trainer_config(max_epochs=1, run_name="budget")))
    assert sorted(p.name for p in (search / "trials").iterdir()) == ["0"]
    assert json.loads((search / "budget.json").read_text())["spent_seconds"] >= spent


def test_label_smoothing_and_class_weights_train_and_keep_integer_label_metrics(tmp_path, trainer_config):
    task = make_task(tmp_path, class_weight_power=0.5, rotation_degrees=10.0)
    hp = small_hyperparameters()
    hp.Fixed("label_smoothing", 0.2)
    task.hyperparameters = hp
    trainer = Trainer(trainer_config(max_epochs=1, run_name="smooth"))
    trainer.fit(task)
    assert task.model.loss.label_smoothing == 0.2
    assert any(isinstance(layer, keras.layers.RandomRotation) for layer in task.augmentation.layers)
    assert 0.0 <= trainer.metrics["train_accuracy"] <= 1.0 and np.isfinite(trainer.metrics["train_loss"])
    assert 0.0 <= trainer.metrics["val_macro_f1"] <= 1.0


def test_bf16_mixed_training_exports_float32_h5_and_tflite(tmp_path, trainer_config):
    task = make_task(tmp_path)
    task.hyperparameters = small_hyperparameters()
    trainer = Trainer(trainer_config(max_epochs=1, run_name="bf16", precision="bf16-mixed"))
    task.run(trainer)
    assert task.model.layers[2].compute_dtype == "bfloat16"  # trained in mixed precision
    exported = keras.models.load_model(tmp_path / "models" / "emotion.h5", compile=False)
    assert {layer.compute_dtype for layer in exported._flatten_layers()} == {"float32"}
    assert all(w.dtype == "float32" for w in exported.weights)
    faces = task.split("test")[0][:2]
    np.testing.assert_allclose(TFLiteClassifier(tmp_path / "models" / "emotion.tflite")(faces[:1]),
                               exported(faces[:1]).numpy()[0], atol=2e-2)


def test_bayesian_without_scikit_learn_is_refused_clearly(tmp_path, monkeypatch):
    from tasks.emotion.search import TunerConfig, make_tuner

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(UserError, match=r"keras-tuner\[bayesian\]"):
        make_tuner(SmallHyperModel(), TunerConfig(tuner="bayesian"), tmp_path)


def test_distributed_role_reads_kerastuner_variables(monkeypatch):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    assert distributed_role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(UserError, match="KERASTUNER_ORACLE_PORT"):
        distributed_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert distributed_role() == "worker"


# --- real data ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_loader_reads_the_kaggle_csv_sample(data_dir, tmp_path):
    require_data(data_dir, "fer2013_sample.csv")
    shutil.copy(data_dir / "fer2013_sample.csv", tmp_path / "fer2013.csv")
    task = EmotionTask()
    task.data_dir = str(tmp_path)
    x, y = task.split("train")
    assert x.shape == (98, 48, 48, 1) and x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y).tolist() == [14] * 7
    assert task.split("test")[0].shape[0] == 98
    assert list(task.data_checksums()) == ["fer2013.csv"]


@pytest.mark.realdata
def test_cli_fit_and_test_on_real_fer2013(data_dir, tmp_path, monkeypatch):
    require_data(data_dir, "fer2013.npz")
    from typer.testing import CliRunner

    from cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    fit = runner.invoke(app, ["fit", "emotion", "--data-dir", str(data_dir), "--max-epochs", "1",
                              "--limit-train-batches", "3", "--limit-val-batches", "2", "--progress", "none",
                              "--run-name", "smoke"])
    assert fit.exit_code == 0, fit.output
    card = json.loads((tmp_path / "models" / "emotion.json").read_text())
    assert card["data"]["fer2013.npz"] == "b0b422cd531180d82363b3451f9f257a37b88387856047e3a0a48db3f75fd953"
    test = runner.invoke(app, ["test", "emotion", "--model", "models/emotion.h5", "--data-dir", str(data_dir),
                               "--progress", "none"])
    assert test.exit_code == 0, test.output
    assert f"test_accuracy: {card['metrics']['private_test_accuracy']:.4f}" in test.output
    missing = runner.invoke(app, ["test", "emotion", "--model", "nope.h5", "--data-dir", str(data_dir)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_resume_with_crops_flips_and_rotation_is_bit_for_bit(tmp_path, trainer_config):
    from trainer import Callback

    class StopAfterOneEpoch(Callback):
        def on_train_epoch_end(self, trainer, task):
            trainer.should_stop = True

    def task():
        made = make_task(tmp_path, rotation_degrees=10.0)
        made.hyperparameters = small_hyperparameters()
        return made

    straight = task()
    Trainer(trainer_config(max_epochs=2, run_name="straight")).fit(straight)
    keras.backend.clear_session()
    Trainer(trainer_config(max_epochs=2, run_name="split"), callbacks=[StopAfterOneEpoch()]).fit(task())
    keras.backend.clear_session()
    resumed = task()
    Trainer(trainer_config(max_epochs=2, run_name="split", resume=True)).fit(resumed)

    assert resumed.model.get_layer("face_crop").size == 44
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("seeds", "said"), [
    ((0.50, 0.48), "trial spread 5.0x the seed spread (needs 2x): ranks"),
    ((0.24, 0.24), "trial spread 0.1000 against no seed spread: ranks"),
])
def test_the_search_line_weighs_the_trial_spread_against_the_seed_spread(seeds, said):
    from tasks.emotion.search import signal_line

    signal = {"trials": 3, "best": 0.5, "best_trial": "00", "worst": 0.4, "worst_trial": "01", "trial_spread": 0.1,
              "seed_scores": list(seeds), "seed_spread": round(max(seeds) - min(seeds), 4), "majority_class_rate": 0.25,
              "ranks": True}
    assert signal_line(signal).endswith(said)
