"""The adversarial task: a classifier on MNIST or CIFAR-10, then simple-generator adversarial examples.

``config.py`` holds its options (no TensorFlow), ``task.py`` the task, ``generator.py`` the
simple-generator attack. It may import ``common``, ``callbacks``, ``trainer``, ``data`` and
``tasks.classifiers``; no other task.
"""
