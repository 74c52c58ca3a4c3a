"""libfluidsynth for the whole project: pyfluidsynth imported quietly, and one ctypes handle on
the library with the C functions called beyond pyfluidsynth's API declared once.

pyfluidsynth prints "'fluidsynth' was found at ..." on stdout at import time whenever the
environment variable CI is set. That line would land in the middle of a command's output (a
JSON report, a pipe), so every import of pyfluidsynth in the project goes through
`import_fluidsynth`, with stdout held aside while the module loads. `fluid_lib` is pyfluidsynth's
own handle on libfluidsynth (`fluidsynth._fl`) with argument and return types set for the calls
the offline renderer and the realtime synth make directly (float rendering, drum channels, voice
counts, removing sequencer events); `route_log` sends FluidSynth's log lines to a Python logger.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import types

_declared = False
_log_callback = None  # kept alive as long as FluidSynth may call it


def import_fluidsynth() -> types.ModuleType:
    """The pyfluidsynth module; ImportError/OSError as pyfluidsynth raises them."""
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth
    return fluidsynth


def fluid_lib() -> ctypes.CDLL:
    """libfluidsynth (pyfluidsynth's handle) with the project's direct calls declared;
    ImportError/OSError as `import_fluidsynth`."""
    global _declared
    lib = import_fluidsynth()._fl
    if not _declared:
        c_int, ptr = ctypes.c_int, ctypes.c_void_p
        # (synth, frames, left, left offset, left stride, right, right offset, right stride)
        lib.fluid_synth_write_float.argtypes = [ptr, c_int, ptr, c_int, c_int, ptr, c_int, c_int]
        lib.fluid_synth_write_float.restype = c_int
        lib.fluid_synth_set_channel_type.argtypes = [ptr, c_int, c_int]
        lib.fluid_synth_get_active_voice_count.argtypes = [ptr]
        # (sequencer, source, destination, type): -1 = any
        lib.fluid_sequencer_remove_events.argtypes = [ptr, ctypes.c_short, ctypes.c_short, c_int]
        lib.fluid_sequencer_remove_events.restype = None
        _declared = True
    return lib


def route_log(logger: logging.Logger) -> None:
    """Send FluidSynth's log (which it prints on stderr) to `logger`: its errors and warnings as
    warnings, the rest as debug lines. For the whole process, from the first call on."""
    global _log_callback
    if _log_callback is not None:
        return
    lib = fluid_lib()
    cb_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

    def _route(level: int, message: bytes, _data) -> None:
        text = message.decode("utf-8", "replace") if message else ""
        logger.log(logging.WARNING if level <= 2 else logging.DEBUG, "fluidsynth: %s", text)

    _log_callback = cb_type(_route)
    lib.fluid_set_log_function.argtypes = [ctypes.c_int, cb_type, ctypes.c_void_p]
    for level in range(5):
        lib.fluid_set_log_function(level, _log_callback, None)
