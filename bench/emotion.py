"""Emotion figures as JSON: PrivateTest accuracy of the single network (centre crop), with flip and
ten-crop test-time augmentation and of the shipped model (overall and on the faces not duplicated in
Training), macro F1, FLOPs and TFLite milliseconds per face, seconds a FER2013 training epoch in
float32 and bf16-mixed, and the search's best and worst trial against its seed spread.

    python bench/emotion.py                                    # models/emotion.h5, latency on 2 threads
    python bench/emotion.py --search logs/emotion/<run>/search  # that search's signal instead of the card's
    python bench/emotion.py --epoch-probe-batches 0            # skip the epoch timing (about 2 minutes)

Goals: PrivateTest accuracy >= 0.735 shipped; the shipped .h5 loads in a Python with only Keras and
TensorFlow and scores what the card says; single-face TFLite inference <= 1 ms median for the single
network; the search that chose the network ranks (trial spread >= 2x seed spread).
Milliseconds depend on the machine and on its load: the CPU model, its vector flags and the load
average are printed beside them. FLOPs (2 x multiply-adds, convolutions and dense layers) do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ACCURACY_GOAL = 0.735
LATENCY_GOAL_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "emotion.h5"))
    parser.add_argument("--data-dir", default=None, help="else $TRAINLAB_DATA, else ~/.keras/datasets")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search", default=None, help="a search folder (<run>/search); default: the card's search")
    parser.add_argument("--epoch-probe-batches", type=int, default=30,
                        help="training batches timed per precision to estimate seconds an epoch; 0 skips it")
    args = parser.parse_args()


    from data.datasets import load_fer2013
    from tasks.emotion.evaluation import (
        TFLiteClassifier,
        evaluate_faces,
        flops_per_face,
        in_training_mask,
        median_latency_ms,
    )
    from tasks.emotion.model import MacroF1
    from tasks.emotion.preprocessing import FacePreprocessing, preprocess_faces
    from trainer.export import export_tflite, load_model_file, read_model_card

    load_before = os.getloadavg()[0]
    model_path = Path(args.model)
    card = read_model_card(model_path)
    spec = FacePreprocessing.from_dict(card["preprocessing"])
    fer = load_fer2013(args.data_dir)
    faces, labels = fer.splits["PrivateTest"]
    in_training = in_training_mask(faces, fer.splits["Training"][0])
    x = preprocess_faces(faces, spec)

    from tasks.emotion.export import single_network

    shipped = load_model_file(model_path, custom_objects={"MacroF1": MacroF1})
    single = single_network(shipped)

    def figures_of(model) -> dict:
        report = evaluate_faces(model, x, labels, in_training)
        return {"private_test_accuracy": round(report["accuracy"], 4),
                "private_test_accuracy_not_in_training": round(report["accuracy_not_in_training"], 4),
                "private_test_macro_f1": round(report["macro_f1"], 4),
                "per_class_f1": {k: round(v["f1"], 3) for k, v in report["per_class"].items()},
                "flops_per_face": flops_per_face(model), "parameters": int(model.count_params())}

    from tasks.emotion.model import inference_model

    tta = card.get("test_time_augmentation", {"chosen": "none"})
    figures = {
        "model": model_path.name,
        "private_test_faces": int(len(labels)),
        "private_test_faces_in_training": int(in_training.sum()),
        "single_network": figures_of(single),
        "flip": figures_of(inference_model(single, "flip")),
        "ten_crop": figures_of(inference_model(single, "ten-crop")),
        "test_time_augmentation": tta["chosen"],
        "test_time_augmentation_public_test_accuracy": tta.get("public_test_accuracy"),
    }
    figures["shipped"] = figures["single_network"] if tta["chosen"] == "none" else figures_of(shipped)
    figures["accuracy_goal"] = ACCURACY_GOAL
    figures["accuracy_goal_met"] = figures["shipped"]["private_test_accuracy"] >= ACCURACY_GOAL

    face = x[:1]
    shipped_tflite = TFLiteClassifier(model_path.parent / card["tflite"], threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        single_tflite = TFLiteClassifier(export_tflite(single, Path(tmp) / "single.tflite"), threads=args.threads)
        figures["tflite"] = {
            "threads": args.threads, "quantization": card.get("tflite_quantization", "none"),
            "shipped_median_ms_per_face": round(median_latency_ms(shipped_tflite, face), 3),
            "single_network_median_ms_per_face": round(median_latency_ms(single_tflite, face), 3),
            "preprocess_plus_shipped_median_ms": round(median_latency_ms(
                lambda f: shipped_tflite(preprocess_faces(f, spec)), faces[:1]), 3),
            "latency_goal_ms": LATENCY_GOAL_MS,
        }
    figures["tflite"]["latency_goal_met"] = figures["tflite"]["shipped_median_ms_per_face"] <= LATENCY_GOAL_MS
    figures["machine"] = {**cpu_description(), "load_average_1min_before": round(load_before, 2),
                          "load_average_1min_after": round(os.getloadavg()[0], 2)}
    if args.epoch_probe_batches:
        figures["seconds_per_epoch"] = epoch_seconds(card, fer.splits["Training"], args.epoch_probe_batches)
    figures["plain_keras_private_test_accuracy"] = plain_keras_accuracy(model_path, x, labels)
    figures["search"] = search_signal(Path(args.search)) if args.search else card.get("search")
    figures["commands"] = card.get("commands", [card.get("command")])
    print(json.dumps(figures, indent=2))


PLAIN_KERAS = """
import sys, numpy as np, keras
model = keras.models.load_model(sys.argv[1])
print(float(np.mean(model.predict(np.load(sys.argv[2]), batch_size=256, verbose=0).argmax(1) == np.load(sys.argv[3]))))
"""


def plain_keras_accuracy(model_path: Path, faces, labels) -> float | dict:
    """PrivateTest accuracy of the .h5 loaded by a Python that imports nothing of this project (run from an
    empty folder), fed the card's preprocessing (48x48 grey, pixels / 255)."""
    import subprocess

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", faces)
        np.save(Path(tmp) / "y.npy", labels)
        done = subprocess.run([sys.executable, "-c", PLAIN_KERAS, str(model_path.resolve()), "x.npy", "y.npy"],
                              cwd=tmp, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return round(float(done.stdout.strip().splitlines()[-1]), 4)


def epoch_seconds(card: dict, training, batches: int) -> dict:
    """Seconds a FER2013 training epoch of the card's architecture would take in float32 and in bf16-mixed,
    from ``batches`` timed ``train_on_batch`` steps each (the first few, tracing, left out)."""
    import time

    import keras
    import keras_tuner

    from tasks.emotion.config import EmotionConfig
    from tasks.emotion.model import EmotionHyperModel

    batch_size = card.get("training", {}).get("batch_size", 128)
    faces = (training[0][:batch_size].astype("float32") / 255.0)[..., None]
    labels = training[1][:batch_size]
    steps = -(-len(training[1]) // batch_size)
    result = {"batch_size": batch_size, "steps_per_epoch": steps, "timed_batches": batches}
    for precision, policy in (("32", "float32"), ("bf16-mixed", "mixed_bfloat16")):
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy(policy)
        hp = keras_tuner.HyperParameters()
        for name, value in card.get("architecture", {}).items():
            hp.Fixed(name, value)
        model = EmotionHyperModel(defaults=EmotionConfig()).build(hp)
        keras.mixed_precision.set_global_policy("float32")
        for _ in range(3):
            model.train_on_batch(faces, labels)
        started = time.perf_counter()
        for _ in range(batches):
            model.train_on_batch(faces, labels)
        result[precision] = round((time.perf_counter() - started) / batches * steps, 1)
    result["bf16_over_float32"] = round(result["bf16-mixed"] / result["32"], 2)
    return result


def cpu_description() -> dict:
    """The CPU model and the vector instruction sets TensorFlow's kernels can use, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": "unknown"}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name", "unknown"), "cores": os.cpu_count(),
            "vector_flags": sorted(flags & {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                            "amx_bf16", "avx512_fp16"})}


def search_signal(search_dir: Path) -> dict:
    path = search_dir / "signal.json"
    if not path.exists():
        return {"error": f"{path} is missing: the search did not finish (resume it with --resume)"}
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
