"""The seed-004 parameter store (`Memory`) in Python, with hand-written optimizer steps."""

from . import cnn, mlp  # noqa: F401  (importing registers the implementations)
