"""Plugins: finding implementations (discovery), importing them (loading), and what each
declares, cached so that listing and planning import no framework (declarations).

    discover(plugin_dirs)  -> Registry of Plugin (available or why not) and BrokenPlugin
    load_plugin(source, name, model) -> the class, in the worker that runs its case
    source_digest(source)  -> SHA-256 of a plugin's files, to check a cluster's workers

The plugin contract itself is `bench.api`, which imports nothing from here: registration
goes through `api.collecting()`, scoped to the import of one source.
"""

from bench.plugins.declarations import (
    BrokenPlugin,
    Plugin,
    PluginInfo,
    Registry,
    Unregistered,
    missing_requirements,
    requirements_reason,
)
from bench.plugins.discovery import (
    BUILTIN_DIR,
    CACHE_FILE,
    discover,
    plugin_paths,
    relocated_source,
    source_digest,
)
from bench.plugins.loading import ENTRY_POINT_GROUP, load_plugin, load_source

__all__ = [
    "BUILTIN_DIR",
    "CACHE_FILE",
    "ENTRY_POINT_GROUP",
    "BrokenPlugin",
    "Plugin",
    "PluginInfo",
    "Registry",
    "Unregistered",
    "discover",
    "load_plugin",
    "load_source",
    "missing_requirements",
    "plugin_paths",
    "relocated_source",
    "requirements_reason",
    "source_digest",
]
