"""Per-layer gradient histograms and max-|gradient| scalars in TensorBoard, for any model.

The implementation sits in ``trainer.gradients`` beside ``GradientProbe``, so tasks can supply the
callback (``Task.extra_callbacks``) while ``tasks/`` and ``callbacks/`` never import each other.
"""

from trainer.gradients import GradientHistogram, GradientProbe

__all__ = ["GradientHistogram", "GradientProbe"]
