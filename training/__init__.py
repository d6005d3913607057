"""livespeech's training package: corpus synthesis, data, the CTC training loop,
evaluation and export to model folders. See ``livespeech-train --help``."""
