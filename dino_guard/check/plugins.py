"""pydantic's plugin search, skipped on the check path (a pre-commit hook starts a process per commit).

pydantic looks for plugins when it builds the first model class: `pydantic.plugin._schema_validator`
imports `get_plugins` from `pydantic.plugin._loader`, a module that imports importlib.metadata (and
with it email, zipfile, csv and socket: about 20 ms, a tenth of a hook run over 20 setup files) and
then reads every installed distribution's metadata unless PYDANTIC_DISABLE_PLUGINS says none.

The setup schema needs no plugin, so `check` disables them unless the user chose otherwise, and
then stands in for the loader with a module that answers as pydantic's loader does with plugins
disabled (no plugins) without importing importlib.metadata. Any other name a pydantic release asks
of its loader comes from the real module, imported at that moment, so a later pydantic still works;
with plugins the user enabled, or a loader already imported, nothing is replaced.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

LOADER = "pydantic.plugin._loader"
_NONE = ("__all__", "1", "true")  # pydantic's spellings of "no plugins" (plugin/_loader.py)


def skip_plugin_search() -> bool:
    """Disable pydantic plugins (unless the user set PYDANTIC_DISABLE_PLUGINS) and skip the loader's
    import when every plugin is disabled; True when the stand-in is in place."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] not in _NONE or LOADER in sys.modules:
        return False
    sys.modules[LOADER] = NoPluginLoader(LOADER)
    return True


class NoPluginLoader(types.ModuleType):
    """pydantic.plugin._loader with every plugin disabled."""

    @staticmethod
    def get_plugins() -> tuple:
        return ()

    def __getattr__(self, name: str):
        if name.startswith("__"):  # module protocol lookups (__path__, __file__): what a stand-in lacks
            raise AttributeError(name)
        if sys.modules.get(LOADER) is self:
            del sys.modules[LOADER]
        return getattr(importlib.import_module(LOADER), name)
