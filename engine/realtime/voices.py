"""The accompaniment's voices as the synth plays them: one name, GM program, drum flag and MIDI
channel each, from the accompanist (its roles and programs) and the session's settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.synth.live import DRUM_CHANNEL, METRONOME_CHANNEL


def drum_flags(model) -> tuple[bool, ...]:
    """Which of the model's roles are drums (both the accompanist and the band say so in their
    `drums`); none for a model without it (a test's fake)."""
    return tuple(bool(d) for d in getattr(model, "drums", ()))


@dataclass(frozen=True, slots=True)
class Voices:
    names: tuple[str, ...] = ()
    programs: tuple[int, ...] = ()
    drums: tuple[bool, ...] = ()
    channels: tuple[int, ...] = ()

    @classmethod
    def of(cls, model, programs: Sequence[int] | None = None) -> Voices:
        """The voices of `model` (roles, programs), with `programs` in place of the model's when
        given. Drum voices play on the GM drum channel, the others on the free channels in order
        (never the drum or metronome channel)."""
        programs = tuple(programs or getattr(model, "programs", ()) or ())
        roles = tuple(getattr(model, "roles", ()) or ())
        n = max(len(roles), len(programs))
        drums = drum_flags(model)
        drums = drums[:n] + (False,) * (n - len(drums))
        free = iter(c for c in range(1, 16) if c not in (DRUM_CHANNEL, METRONOME_CHANNEL))
        return cls(names=roles + tuple(f"part {i + 1}" for i in range(len(roles), n)),
                   programs=programs + (0,) * (n - len(programs)), drums=drums,
                   channels=tuple(DRUM_CHANNEL if d else next(free) for d in drums))

    def __len__(self) -> int:
        return len(self.channels)

    def set_programs(self, synth, soundfont: str | Path | None = None) -> None:
        for ch, prog, drum in zip(self.channels, self.programs, self.drums):
            synth.set_program(ch, prog, is_drum=drum, soundfont=soundfont)
