#!/usr/bin/env bash
# Set up PopMusicNet Studio on Debian/Ubuntu: system packages, then .venv at the repo root.
# Idempotent and quiet when nothing is missing.   usage: scripts/setup.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-run}

# Runtime: FluidSynth (library + CLI), GM soundfonts, PortAudio, JACK; Qt's xcb platform needs the
# xcb libs and fonts. Tests also use Xvfb, a window manager (openbox: focus and dialogs), xdotool
# (the studio driven from outside) and ImageMagick (import/convert).
pkgs=(libfluidsynth3 fluidsynth timgm6mb-soundfont fluid-soundfont-gm libportaudio2 libsndfile1
      jackd2 libjack-jackd2-0 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0
      libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
      libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core python3-venv)
[ "$target" = test ] && pkgs+=(xvfb xdotool imagemagick openbox)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y -q --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    $cmd >/dev/null
  else
    echo "setup: missing system packages. Run:" >&2
    echo "  sudo apt-get update && sudo $cmd" >&2
    exit 1
  fi
fi

# jackd2 asks about realtime priority through debconf; the dummy driver needs none of it.
py=${PYTHON:-python3}
extras=""
[ "$target" = test ] && extras="[train,test]"
stamp=".venv/.popmusicnet-${target}"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing popmusicnet${extras} into .venv (about a minute)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import engine, onnxruntime, fluidsynth" >/dev/null
  echo "$want" > "$stamp"
fi
