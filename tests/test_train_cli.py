"""livespeech-train's errors: one line on stderr and a non-zero exit, never a traceback."""

import pytest

from training.cli import main


@pytest.mark.parametrize("argv, says", [
    (["evaluate", "--model", "{tmp}/no-model", "{tmp}/corpus.jsonl"], "no model folder"),
    (["evaluate", "--model", "{tmp}/broken", "{tmp}/corpus.jsonl"], "broken"),
    (["evaluate", "--model", "models/base", "{tmp}/missing.jsonl"], "corpus not found"),
    (["fit", "--run-dir", "{tmp}/run"], "no training data"),
    (["evaluate", "--model", "models/base", "--lead-in", "0.5", "{tmp}/corpus.jsonl"], "needs --noise-floor"),
])
def test_user_errors_are_one_line(tmp_path, capsys, argv, says):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "corpus.jsonl").write_text("")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("livespeech-train: error:") and says in err
