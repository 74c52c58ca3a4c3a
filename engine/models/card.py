"""Model cards: the JSON beside each exported model that says what it is and how to feed it.

A card names its ONNX files (one per component: an encoder, a decoder, one RNN step...), their
sha256, the representation they expect (steps per beat, pitch window, tracks, latent size), the
training data and command, and the metrics measured on the held-out split. The runtime loads only
what a card describes and checks the files against it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelError

CARD_SCHEMA = 1


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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: not a readable model card ({exc})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: model card must be a JSON object")
        missing = [k for k in ("name", "kind", "files") if k not in data]
        if missing:
            raise ModelError(f"{path}: model card lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        card = cls(**{k: v for k, v in data.items() if k in known})
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
