"""What a reader (the studio, the CLI) may ask of a running live engine: one frozen dataclass per
command, queued with `LiveEngine.send(cmd)`. The engine thread takes them between steps; changes
to the music (tempo, meter, model, temperature) take effect at the next bar it plans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SetTempo:
    bpm: float


@dataclass(frozen=True, slots=True)
class SetMeter:
    meter: tuple[int, int]  # (numerator, denominator)


@dataclass(frozen=True, slots=True)
class SetMetronome:
    on: bool


@dataclass(frozen=True, slots=True)
class SetAccompany:
    """Off: the next bars get no accompaniment; on again: a fresh session with the same model."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetTemperature:
    temperature: float | None


@dataclass(frozen=True, slots=True)
class LoadModel:
    """Load the accompanist `name` (None: the bundled default) on a worker thread; the engine
    adopts it at the next bar it plans."""

    name: str | None


Command = SetTempo | SetMeter | SetMetronome | SetAccompany | SetTemperature | LoadModel
