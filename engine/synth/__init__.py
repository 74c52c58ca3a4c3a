"""FluidSynth facade: SoundFont discovery (`soundfont`), offline rendering (`render`), and the
realtime driver (`live`, owned by the realtime engine).

Only `find_soundfont` is imported here: it is light. Import `engine.synth.render` where audio is
rendered, so that loading libfluidsynth stays out of commands that do not need it.
"""

from engine.synth.soundfont import find_soundfont, validate_soundfont

__all__ = ["find_soundfont", "validate_soundfont"]
