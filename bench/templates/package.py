"""template-name: say in one line how this implementation works (written by `bench new`)."""

from . import template_module  # noqa: F401  (importing registers the implementation)
