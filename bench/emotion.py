"""Emotion figures as JSON: PrivateTest accuracy of the shipped model, single-face latency, training
time and the tuner's cost per trial.

    python bench/emotion.py                                   # models/emotion.h5, latency on 2 threads
    python bench/emotion.py --search logs/emotion/<run>/search  # adds the cost per trial of that search

Goals (issue 6): PrivateTest accuracy >= 0.70; single-face inference <= 1 ms median.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ACCURACY_GOAL = 0.70
LATENCY_GOAL_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "emotion.h5"))
    parser.add_argument("--data-dir", default=None, help="else $TRAINLAB_DATA, else ~/.keras/datasets")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search", default=None, help="a search folder (<run>/search) to time per trial")
    args = parser.parse_args()

    import numpy as np

    from tasks.emotion_eval import TFLiteClassifier, class_report, median_latency_ms, tflite_accuracy
    from tasks.emotion_model import MacroF1
    from tasks.face_preprocessing import FacePreprocessing, preprocess_faces
    from trainer.datasets import FER_CLASSES, load_fer2013
    from trainer.export import load_model_file, read_model_card

    model_path = Path(args.model)
    card = read_model_card(model_path)
    spec = FacePreprocessing.from_dict(card["preprocessing"])
    faces, labels = load_fer2013(args.data_dir).splits["PrivateTest"]
    x = preprocess_faces(faces, spec)

    model = load_model_file(model_path, custom_objects={"MacroF1": MacroF1})
    keras_pred = np.concatenate([np.asarray(model(x[i:i + 256], training=False)) for i in range(0, len(x), 256)])
    keras_report = class_report(_confusion(labels, keras_pred.argmax(1)), FER_CLASSES)

    tflite_path = model_path.parent / card["tflite"]
    tflite = TFLiteClassifier(tflite_path, threads=args.threads)

    face = x[:1]
    raw_face = faces[:1]
    figures = {
        "model": model_path.name,
        "parameters": int(model.count_params()),
        "private_test_accuracy": round(keras_report["accuracy"], 4),
        "private_test_macro_f1": round(keras_report["macro_f1"], 4),
        "private_test_accuracy_tflite": round(tflite_accuracy(tflite_path, x, labels, args.threads), 4),
        "tflite_quantization": card.get("tflite_quantization", "none"),
        "card_private_test_accuracy": card["metrics"]["private_test_accuracy"],
        "per_class_f1": {k: round(v["f1"], 3) for k, v in keras_report["per_class"].items()},
        "accuracy_goal": ACCURACY_GOAL,
        "accuracy_goal_met": keras_report["accuracy"] >= ACCURACY_GOAL,
        "latency_threads": args.threads,
        # Other processes on the machine inflate the latencies; this says how busy it was.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "tflite_median_ms": round(median_latency_ms(tflite, face), 3),
        "preprocess_plus_tflite_median_ms": round(median_latency_ms(
            lambda f: tflite(preprocess_faces(f, spec)), raw_face), 3),
        "keras_call_median_ms": round(median_latency_ms(lambda f: model(f, training=False), face, 5, 50), 3),
        "keras_predict_median_ms": round(median_latency_ms(lambda f: model.predict(f, verbose=0), face, 2, 20), 3),
        "latency_goal_ms": LATENCY_GOAL_MS,
        "training": card.get("training"),
        "command": card.get("command"),
    }
    figures["latency_goal_met"] = figures["tflite_median_ms"] <= LATENCY_GOAL_MS
    if args.search:
        figures["tuner"] = tuner_cost(Path(args.search))
    print(json.dumps(figures, indent=2))


def _confusion(labels, predicted):
    import numpy as np

    confusion = np.zeros((7, 7), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return confusion


def tuner_cost(search_dir: Path) -> dict:
    """Seconds and epochs of each finished trial, from the ``timing.json`` its TensorBoard callback wrote."""
    timings = [json.loads(p.read_text()) for p in sorted((search_dir / "tensorboard").glob("*/execution0/timing.json"))]
    if not timings:
        return {"trials": 0}
    seconds = sorted(t["seconds"] for t in timings)
    epochs = sum(t["epochs"] for t in timings)
    return {"trials": len(timings), "median_seconds_per_trial": seconds[len(seconds) // 2],
            "total_seconds": round(sum(seconds), 1), "total_epochs": epochs,
            "seconds_per_epoch": round(sum(seconds) / max(1, epochs), 1)}


if __name__ == "__main__":
    main()
