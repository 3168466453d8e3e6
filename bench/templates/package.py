"""template-name: say in one line how this implementation works (written by `bench new`)."""

from . import template_model  # noqa: F401  (importing registers the implementation)
