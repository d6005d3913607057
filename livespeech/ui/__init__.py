"""The live Textual view (``livespeech`` with no command); see :mod:`livespeech.ui.app`."""
