"""livespeech: streaming speech recognition in the terminal (LSTM-CTC, log-mel, greedy decoding)."""

__version__ = "0.1.0"
