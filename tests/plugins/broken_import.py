"""A plugin that raises at import: discovery must report it and load the others."""

raise ImportError("this plugin is broken on purpose")
