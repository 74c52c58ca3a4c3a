"""Log-frequency spectrograms in numpy, so classifying a WAV needs no torch (and no librosa).

Hand-written because the runtime may only use numpy + ONNX Runtime: a Hann-windowed STFT, a
filterbank, and a log scale referenced to the clip's maximum (so loudness does not matter),
clipped at -80 dB and mapped to [0, 1]. Training computes the same features with these same
functions.

Two filterbanks: `mel_filterbank` (HTK mel, triangular, area-normalised) and
`semitone_filterbank` (one triangular band per semitone, MIDI 40-111). The classifier uses the
semitone bands: it must hear melodies, and on a semitone axis a transposition is a shift, which
convolution filters are built to ignore (measured: on mel bands the spectrogram CNN stayed near
chance after 3 epochs).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import UserInputError

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
N_FFT = 2048
HOP = 1024  # 46 ms frames: enough for style, half the cost of 512
N_MELS = 64
FMIN = 30.0
FMAX = 8000.0
LOW_MIDI = 40  # E2, 82 Hz
N_BANDS = 72  # semitones up to B7-ish (MIDI 111, 3.95 kHz)
TOP_DB = 80.0


MAX_AUDIO_SECONDS = 300.0  # a longer recording is classified on its first five minutes
MIN_FILE_RATE, MAX_FILE_RATE = 4000, 384000
BLOCK_FRAMES = 1 << 16


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
               max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """A sound file as mono float32 at `sample_rate` (channels averaged, resampled).

    The file is streamed block by block and only its first `max_seconds` are read (a warning
    says so), so memory stays bounded whatever its length. A sample rate outside 4..384 kHz or
    a NaN/infinite sample is refused (UserInputError naming the file).
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    if not path.is_file():
        raise UserInputError(f"{path}: not a regular file")
    try:
        with sf.SoundFile(str(path)) as f:
            sr = int(f.samplerate)
            if not MIN_FILE_RATE <= sr <= MAX_FILE_RATE:
                raise UserInputError(f"{path}: sample rate {sr} Hz is outside "
                                     f"{MIN_FILE_RATE}..{MAX_FILE_RATE} Hz")
            if not 1 <= f.channels <= 64:
                raise UserInputError(f"{path}: {f.channels} channels (1..64 are read)")
            limit = int(max_seconds * sr)
            parts, total = [], 0
            while total < limit:
                block = f.read(min(BLOCK_FRAMES, limit - total), dtype="float32",
                               always_2d=True)
                if len(block) == 0:
                    break
                if not np.isfinite(block).all():
                    raise UserInputError(f"{path}: contains NaN or infinite samples near "
                                         f"{total / sr:.1f} s")
                parts.append(block.mean(axis=1))
                total += len(block)
            more = f.frames > total if f.seekable() else False
    except UserInputError:
        raise
    except MemoryError:
        raise UserInputError(f"{path}: not a readable audio file (claims more data than "
                             "it can hold)") from None
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"{path}: not a readable audio file ({reason})") from None
    if more:
        log.warning("%s: only the first %.0f s of the recording are used", path, max_seconds)
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return resample(mono, sr, sample_rate)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling by truncating/zero-padding the spectrum (exact for periodic
    signals; fine for classification features)."""
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out or x.size == 0:
        return x
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} and {sr_out}")
    n_out = max(1, int(round(x.size * sr_out / sr_in)))
    spec = np.fft.rfft(x.astype(np.float64))
    n_bins = n_out // 2 + 1
    if n_bins <= spec.size:
        spec = spec[:n_bins]
    else:
        spec = np.concatenate([spec, np.zeros(n_bins - spec.size, spec.dtype)])
    return (np.fft.irfft(spec, n_out) * (n_out / x.size)).astype(np.float32)


def stft_power(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Power spectrogram (frames, n_fft // 2 + 1) of a centred, reflect-padded Hann STFT."""
    x = np.asarray(x, dtype=np.float32)
    pad = n_fft // 2
    if x.size <= pad:
        x = np.pad(x, (0, pad + 1 - x.size))
    x = np.pad(x, pad, mode="reflect")
    n_frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = x[idx] * np.hanning(n_fft + 1)[:-1].astype(np.float32)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).astype(np.float32)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters evenly spaced on the mel scale."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= (2.0 / (hi - lo))  # equal area per filter
    return fb.astype(np.float32)


@lru_cache(maxsize=8)
def semitone_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
                        low_midi: int = LOW_MIDI, n_bands: int = N_BANDS) -> np.ndarray:
    """(n_bands, n_fft // 2 + 1): band k is a triangle of +-1 semitone around MIDI low_midi + k
    on a log-frequency axis (low bands share STFT bins: 10.8 Hz bins at 2048/22050)."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    with np.errstate(divide="ignore"):
        midi = 69.0 + 12.0 * np.log2(np.maximum(freqs, 1e-6) / 440.0)
    centres = low_midi + np.arange(n_bands)[:, None]
    fb = np.maximum(0.0, 1.0 - np.abs(midi[None, :] - centres))
    return fb.astype(np.float32)


def log_mel(x: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, hop: int = HOP,
            n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, frames) log-mel spectrogram in [0, 1]: dB relative to the loudest bin, floored
    at -TOP_DB."""
    return _log_bands(stft_power(x, n_fft, hop) @ mel_filterbank(sample_rate, n_fft, n_mels).T)


def log_semitone(x: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
                 hop: int = HOP, low_midi: int = LOW_MIDI, n_bands: int = N_BANDS) -> np.ndarray:
    """(n_bands, frames) log spectrogram on semitone bands, in [0, 1] like `log_mel`."""
    fb = semitone_filterbank(sample_rate, n_fft, low_midi, n_bands)
    return _log_bands(stft_power(x, n_fft, hop) @ fb.T)


def _log_bands(bands: np.ndarray) -> np.ndarray:
    """(frames, bands) power -> (bands, frames) dB re. the maximum, floored, mapped to [0, 1]."""
    mel = bands
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db - db.max(), -TOP_DB)
    return ((db + TOP_DB) / TOP_DB).T.astype(np.float32)


def spectrogram_windows(spec: np.ndarray, frames: int, hop: int) -> np.ndarray:
    """Cut (n_mels, T) into (n, 1, n_mels, frames) windows; a short spectrogram is padded with
    silence (0) to one window."""
    n_mels, t = spec.shape
    if t < frames:
        spec = np.pad(spec, ((0, 0), (0, frames - t)))
        t = frames
    starts = list(range(0, t - frames + 1, hop))
    if (t - frames) % hop > hop // 2:
        starts.append(t - frames)
    return np.stack([spec[:, s:s + frames] for s in starts])[:, None].astype(np.float32)
