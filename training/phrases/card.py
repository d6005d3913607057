"""What a phrase model's folder says about itself: the phrase entry of its
``config.json`` and the phrase section of its ``MODEL_CARD.md``."""

from __future__ import annotations

from pathlib import Path

from livespeech.atomic import update_json_atomic, write_text_atomic
from livespeech.bundle import CARD_FILE, CONFIG_FILE
from livespeech.phrases import CONFIG_KEY, PhraseSet, ScorerOptions


def card_section(phrase_set: PhraseSet, options: ScorerOptions, metrics: dict, training: dict) -> str:
    """The model card's markdown section on the phrase set, scorer and numbers.

    Args:
        metrics: per evaluation set, :func:`training.phrases.scoring.classification_metrics`.
        training: how the model was built (base, seconds, steps, synthetic takes per
            phrase, distractors, recordings), as ``train_phrase_model`` reports it.
    """
    lines = [
        "", "## Phrases", "",
        f"Fine-tuned for the phrase set `{phrase_set.name}` ({len(phrase_set.phrases)} phrases: "
        + ", ".join(f'"{p}"' for p in phrase_set.phrases) + ").",
        f"Built by `livespeech-train phrases` in {training['seconds'] / 60:.1f} minutes "
        f"({training['synthetic_takes_per_phrase']} synthetic takes per phrase, {training['distractors']} distractor utterances, "
        f"{training['recordings']} recorded takes, {training['steps']} fine-tuning steps from `{training['base']}`).",
        "",
        "Phrase scorer (CTC forward score of each phrase against the free transcript; see `livespeech/phrases.py`), "
        f"calibrated on held-out synthetic speech: scale {options.scale:.3f}, threshold {options.threshold:.3f} nats/char, "
        f"temperature {options.temperature:.3f}.",
        "",
        "| evaluation set | in-set | accuracy | out-of-set | rejected |",
        "|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        acc = f"{row['accuracy']:.3f}" if row["accuracy"] is not None else "-"
        rej = f"{row['rejection']:.3f}" if row["rejection"] is not None else "-"
        lines.append(f"| {name} | {row['in_set']} | {acc} | {row['out_of_set']} | {rej} |")
    return "\n".join(lines) + "\n"


def annotate(folder: Path, entry: dict, section: str, description: str) -> None:
    """Add the phrase entry to a model folder's config.json (and its description)
    and the phrase section to its MODEL_CARD.md, each rewritten atomically."""
    card = (folder / CARD_FILE).read_text(encoding="utf-8") + section
    update_json_atomic(folder / CONFIG_FILE, {CONFIG_KEY: entry, "description": description})
    write_text_atomic(folder / CARD_FILE, card)
