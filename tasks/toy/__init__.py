"""The toy task: a tiny classifier on random data that proves the Trainer in seconds.

``config.py`` holds its options (no TensorFlow), ``task.py`` the task. It may import ``common``,
``callbacks`` and ``trainer``; no other task.
"""
