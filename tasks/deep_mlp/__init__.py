"""The deep-mlp task: the vanishing-gradient study of MNIST MLPs of several depths and activations.

``config.py`` holds its options (no TensorFlow), ``activations.py`` the ``lecun`` activation,
``task.py`` the study and its per-model task, ``study.py`` the table, figures and report. It may
import ``common``, ``callbacks``, ``trainer`` and ``data``; no other task.
"""
