"""LeCun's scaled tanh as a registered Keras activation, so models using it save and load by name."""

from __future__ import annotations

import keras

# LeCun et al., "Efficient BackProp" (1998): f(1) = 1 and f(-1) = -1, and the second derivative is
# largest at x = 1; the small linear term keeps the gradient from vanishing where tanh saturates.
LECUN_SCALE = 1.7159
LECUN_SLOPE = 2.0 / 3.0
LECUN_LEAK = 0.01


@keras.saving.register_keras_serializable(package="trainlab", name="lecun")
def lecun(x):
    """``1.7159 * tanh(2x/3) + 0.01x``; its derivative lies in (0.01, 1.1539]."""
    return LECUN_SCALE * keras.ops.tanh(LECUN_SLOPE * x) + LECUN_LEAK * x


def lecun_derivative(x):
    """``1.7159 * 2/3 * (1 - tanh(2x/3)^2) + 0.01``, for the docs' checks and the report."""
    return LECUN_SCALE * LECUN_SLOPE * (1.0 - keras.ops.tanh(LECUN_SLOPE * x) ** 2) + LECUN_LEAK


# Every activation the deep-MLP study knows: Keras's built-ins by name, LeCun's by function.
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "lecun": lecun}
