#!/usr/bin/env bash
# One-step setup: system packages (PortAudio, libsndfile, speech synthesizers, sox, Asterisk's
# English prompts for training),
# a virtual environment in .venv, and livespeech with its training and test extras.
#   ./install.sh            # everything
#   SKIP_APT=1 ./install.sh # no apt-get (system packages already there)
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${SKIP_APT:-}" ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    libportaudio2 libsndfile1 sox espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
    asterisk-core-sounds-en-wav asterisk-core-sounds-en tmux >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
echo "livespeech installed in .venv: try  .venv/bin/livespeech transcribe assets/samples/*.wav"
