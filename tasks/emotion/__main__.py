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
        if args.live_model:
            export_live_model(args.live_model, args.data_dir)
        else:
            add_test_time_augmentation(args.test_time_augmentation, args.data_dir)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
