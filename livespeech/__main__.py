"""``python -m livespeech`` runs the ``livespeech`` command."""

import sys

from livespeech.cli import main

if __name__ == "__main__":
    sys.exit(main())
