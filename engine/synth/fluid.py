"""Import pyfluidsynth quietly.

pyfluidsynth prints "'fluidsynth' was found at ..." on stdout at import time whenever the
environment variable CI is set. That line would land in the middle of a command's output (a
JSON report, a pipe), so every import of pyfluidsynth in the project goes through here, with
stdout held aside while the module loads.
"""

from __future__ import annotations

import contextlib
import io
import types


def import_fluidsynth() -> types.ModuleType:
    """The pyfluidsynth module; ImportError/OSError as pyfluidsynth raises them."""
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth
    return fluidsynth
