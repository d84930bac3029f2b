"""The examples run as documented."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name, expect", [("localize_file.py", "azimuth"), ("stream_blocks.py", "azimuth"),
                                          ("whisper_utterances.py", "utterances from the target"),
                                          ("moshi_frames.py", "frames of 1920 samples"),
                                          ("pipecat_processor.py", "output=speakers")])
def test_example_runs(name, expect, capsys, monkeypatch):
    if name == "pipecat_processor.py":
        pytest.importorskip("pipecat")
    monkeypatch.setattr("sys.argv", [name])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert expect in capsys.readouterr().out
