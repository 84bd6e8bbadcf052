"""The robust task: adversarial training (PGD / FGSM) of a classifier that resists those attacks.

``config.py`` holds its options and recipes (no TensorFlow), ``task.py`` the task, ``attacks.py``
the gradient attacks and their evaluation. It may import ``common``, ``callbacks``, ``trainer``,
``data`` and ``tasks.classifiers``; no other task.
"""
