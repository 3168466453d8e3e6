"""scikit-learn has no convolutional layers: the CNN scenarios are *not supported* here,
shown as such in the report rather than approximated with an MLP."""

from __future__ import annotations

from bench.api import Trainer, register

REASON = "scikit-learn has no convolutional layers"


@register
class SklearnCNN(Trainer):
    name = "sklearn"
    model = "cnn"
    framework = "scikit-learn"
    requires = ("sklearn",)

    @classmethod
    def why_unsupported(cls, scenario):
        return REASON

    def __init__(self, scenario, parameters, seed, device="cpu"):
        raise NotImplementedError(REASON)
