"""Model cards: the JSON beside each exported model that says what it is and how to feed it.

A card names its ONNX files (one per component: an encoder, a decoder, one RNN step...), their
sha256, the representation they expect (steps per beat, pitch window, tracks, latent size), the
training data and command, and the metrics measured on the held-out split. The runtime loads only
what a card describes and checks the files against it.

A card is validated as a whole when it is read (`validate_card`): the fields have their types,
every file is a plain name in the card's own folder (no `..`, no other folder), every file has a
sha256, and the representation of the kinds this program runs carries what their loaders read
(a classifier's labels, an audio model's sample rate...). A defective card is a `ModelError`
naming the card, never a KeyError from deep inside a loader.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelError

CARD_SCHEMA = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _pos_int(lo: int = 1, hi: int = 1 << 24):
    def check(v):
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    check.__doc__ = f"an integer in {lo}..{hi}"
    return check


def _labels(v) -> bool:
    return (isinstance(v, list) and len(v) >= 2 and len(set(v)) == len(v)
            and all(isinstance(x, str) and x for x in v))


_labels.__doc__ = "a list of at least two distinct, non-empty names"


def _dict(v) -> bool:
    return isinstance(v, dict)


_dict.__doc__ = "an object"


def _list(v) -> bool:
    return isinstance(v, list) and len(v) >= 1


_list.__doc__ = "a non-empty list"

def _melody(v) -> bool:
    return (isinstance(v, dict) and _pos_int(3, 1 << 12)(v.get("vocab"))
            and all(_pos_int(0, 1 << 12)(v.get(k)) for k in ("rest", "hold", "note0")))


_melody.__doc__ = "an object with the token vocabulary size and the rest, hold, note0 tokens"

# What each kind's loader reads from `representation`: key -> check (its docstring says what
# the value must be).
REPRESENTATION_CHECKS: dict[str, dict] = {
    "classifier-midi": {"labels": _labels, "steps_per_beat": _pos_int(1, 96),
                        "window_steps": _pos_int(1, 1 << 14), "hop_steps": _pos_int(1, 1 << 14),
                        "low_pitch": _pos_int(0, 127), "n_pitches": _pos_int(1, 128)},
    "classifier-audio": {"labels": _labels, "sample_rate": _pos_int(4000, 192000),
                         "n_fft": _pos_int(16, 1 << 16), "hop": _pos_int(1, 1 << 16),
                         "window_frames": _pos_int(1, 1 << 16),
                         "window_hop_frames": _pos_int(1, 1 << 16)},
    "accompanist": {"latent": _pos_int(1, 4096), "rnn_hidden": _pos_int(1, 1 << 14),
                    "tracks": _list, "decoding": _dict},
    "morph": {"grid": _dict, "n_bars": _pos_int(1, 64), "latent": _pos_int(1, 4096),
              "hidden": _pos_int(1, 1 << 14), "melody": _melody},
    "gan": {"grid": _dict, "noise": _pos_int(1, 4096)},
    "continuation": {"grid": _dict, "layers": _pos_int(1, 64), "hidden": _pos_int(1, 1 << 14)},
}


def validate_card(data, path: str | Path) -> None:
    """Raise ModelError naming `path` unless `data` (a parsed card) is a complete, sane card."""
    def bad(what: str):
        return ModelError(f"{path}: defective model card ({what})")

    if not isinstance(data, dict):
        raise ModelError(f"{path}: model card must be a JSON object")
    missing = [k for k in ("name", "kind", "files") if k not in data]
    if missing:
        raise ModelError(f"{path}: model card lacks {', '.join(missing)}")
    for key in ("name", "kind"):
        if not isinstance(data[key], str) or not data[key].strip() or any(
                ord(c) < 32 for c in data[key]):
            raise bad(f"{key} must be a non-empty one-line string")
    for key in ("version", "created", "description"):
        if key in data and not isinstance(data[key], (str, int)) or isinstance(
                data.get(key), bool):
            raise bad(f"{key} must be a string")
    if "schema" in data and (not isinstance(data["schema"], int)
                             or not 1 <= data["schema"] <= CARD_SCHEMA):
        raise bad(f"schema {data['schema']!r} is not one this program reads "
                  f"(1..{CARD_SCHEMA})")
    for key in ("representation", "training", "metrics", "sha256"):
        if key in data and not isinstance(data[key], dict):
            raise bad(f"{key} must be an object")
    files = data["files"]
    if not isinstance(files, dict) or not files:
        raise bad("files must be a non-empty object of component: file name")
    digests = data.get("sha256", {})
    for component, name in files.items():
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
                or "\\" in name or "\0" in name or Path(name).name != name:
            raise bad(f"file {name!r} of {component!r} must be a plain file name beside the "
                      "card")
        digest = digests.get(component)
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise bad(f"{component!r} has no sha256 (64 hex digits)")
    checks = REPRESENTATION_CHECKS.get(data["kind"], {})
    rep = data.get("representation", {})
    for key, check in checks.items():
        if key not in rep:
            raise bad(f"representation lacks {key!r}")
        if not check(rep[key]):
            raise bad(f"representation {key!r} must be {check.__doc__}, got {rep[key]!r:.60}")
    for key, value in rep.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f"representation {key!r} is {value}")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelCard:
    name: str
    kind: str
    version: str = "1"
    files: dict[str, str] = field(default_factory=dict)  # component -> file name beside the card
    sha256: dict[str, str] = field(default_factory=dict)  # component -> hex digest
    representation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    description: str = ""
    schema: int = CARD_SCHEMA
    path: Path | None = None  # where the card was read from (not serialised)

    # -- (de)serialisation --------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: model card not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable model card ({exc})") from None
        except RecursionError:
            raise ModelError(f"{path}: not a readable model card (nested too deeply)") from None
        validate_card(data, path)
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.version = str(card.version)
        card.path = path
        return card

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def write(self, path: str | Path) -> Path:
        from engine.fileio import atomic_write_text

        path = Path(path)
        if not self.created:
            self.created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        atomic_write_text(path, self.to_json())
        self.path = path
        return path

    # -- components ---------------------------------------------------------------------------
    def component_path(self, component: str) -> Path:
        if component not in self.files:
            raise ModelError(f"model {self.name!r} has no component {component!r} "
                             f"(it has {', '.join(sorted(self.files)) or 'none'})")
        base = self.path.parent if self.path else Path(".")
        return base / self.files[component]

    def verify(self) -> None:
        """Check every component exists and matches its recorded sha256."""
        for component in self.files:
            p = self.component_path(component)
            if not p.exists():
                raise ModelError(f"model {self.name!r}: file {p} is missing")
            want = self.sha256.get(component)
            if want and sha256_file(p) != want:
                raise ModelError(f"model {self.name!r}: {p.name} does not match its card "
                                 "(sha256 differs): the file is corrupt or was replaced")

    def open(self, component: str, *, providers: str = "auto", threads: int = 1):
        from engine.models.runtime import OnnxModel

        return OnnxModel(self.component_path(component), sha256=self.sha256.get(component),
                         providers=providers, threads=threads, name=f"{self.name}:{component}")
