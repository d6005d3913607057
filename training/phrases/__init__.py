"""Custom phrase models: ``livespeech-train phrases PHRASES --out NAME``.

From a phrase list alone (plus any recordings the user made with ``livespeech
record``), build a model that recognises those phrases and rejects other speech:

1. **Synthesise** each phrase many times with the training voices (espeak-ng, flite,
   festival, Piper; speed, pitch, noise, reverberation, telephone band), and
   out-of-set "distractor" sentences and words that contain none of the phrases, so
   the model keeps hearing other speech and learns to spell it as something else.
2. **Fine-tune** the default model (``init_from``) on the phrases, the distractors,
   the user's recordings (repeated) and any extra corpora (e.g. FSDD for digits).
3. **Calibrate** the phrase scorer's rejection (:class:`livespeech.phrases.ScorerOptions`)
   on a separate synthetic set of phrases and distractors in other voices, plus a
   share of the recordings held out from training.
4. **Evaluate** on the held-out voice slt (phrases and distractor sentences it was
   never trained on), the held-out recordings and any ``--eval`` corpora.
5. **Install** the model folder, its ``config.json`` carrying the phrase set, the
   calibrated scorer options and the measured numbers, to the user's model folder
   (``livespeech models`` lists it; ``--model NAME`` finds it, and ``classify
   --phrases SET`` uses it by itself when NAME is the set's name).

Every step is resumable in the work folder (synthesis per batch, training from its
last checkpoint); rerun the same command after an interruption.

    livespeech-train phrases my_commands.txt --out my_commands --recordings recordings/my_commands
    livespeech-train phrases digits --out digits --corpus "fsdd:../shared/data/fsdd*2" \\
        --eval fsdd-test:../shared/data/fsdd --install-dir models

Modules, in the order the pipeline uses them:

- :mod:`training.phrases.config`: :class:`PhraseTrainConfig`, its fine-tuning part a
  :class:`training.config.TrainConfig`;
- :mod:`training.phrases.texts`: phrase and distractor texts, labels of utterances;
- :mod:`training.phrases.corpora`: synthesis of the three corpora, recordings split,
  manifests;
- :mod:`training.phrases.scoring`: raw phrase scores of labelled sets and their metrics;
- :mod:`training.phrases.calibrate`: fitting the scorer's temperature and rejection;
- :mod:`training.phrases.card`: the phrase entry of config.json and the model card;
- :mod:`training.phrases.install`: moving the finished model into place;
- :mod:`training.phrases.pipeline`: fine-tuning and the whole pipeline.
"""
