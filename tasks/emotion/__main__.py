"""The emotion task's second command line: re-exports of a shipped model (see ``main``)."""

from __future__ import annotations

import argparse
import sys

from common.errors import UserError


def main(argv=None) -> int:
    """``python -m tasks.emotion --test-time-augmentation models/emotion.h5 [--data-dir DIR]``, or
    ``--live-model models/emotion.h5`` for ``live``'s single-network copy."""
    from tasks.emotion.export import add_test_time_augmentation, export_live_model

    parser = argparse.ArgumentParser(prog="python -m tasks.emotion", description=main.__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--test-time-augmentation", metavar="MODEL_H5", help=add_test_time_augmentation.__doc__)
    action.add_argument("--live-model", metavar="MODEL_H5", help=export_live_model.__doc__)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        path = args.live_model or args.test_time_augmentation
        model, faces = _load(path, args.data_dir)
        if args.live_model:
            export_live_model(path, model, faces)
        else:
            add_test_time_augmentation(path, model, faces)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _load(path: str, data_dir):
    """The model at ``path`` as the emotion task evaluates it, and the faces it is judged on."""
    from tasks.emotion.config import EmotionConfig
    from tasks.emotion.task import EmotionTask

    task = EmotionTask(EmotionConfig(model=str(path), export_dir=None))
    task.data_dir = data_dir
    return task.build_model(), task.judging_faces()


if __name__ == "__main__":
    sys.exit(main())
