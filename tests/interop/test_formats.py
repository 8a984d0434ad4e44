"""A converter given a checkpoint of another known format names that format and the command for it, before any
work, instead of converting it wrongly or failing on a missing key."""

import os

import pytest

from tests.helpers import FIXTURES
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.errors import UserError
from tf_diffwave.interop.formats import identify
from tf_diffwave.interop.torch_checkpoint import read_torch_checkpoint

CHECKPOINTS = {"lmnt": "lmnt-diffwave/lmnt-small.pt", "priorgrad": "priorgrad/priorgrad-small.pt",
               "wavegrad-ivanvovk": "wavegrad/ivanvovk-small.pt", "rf5-diffwave": "rf5-diffwave/rf5-wavenet-small.pt",
               "rf5-sashimi-diffwave": "rf5-diffwave/rf5-sashimi-small.pt",
               "simple-sashimi": "simple-sashimi/sashimi-ar-small.pt"}


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_each_fixture_is_identified_as_the_format_that_saved_it(name):
    assert identify(read_torch_checkpoint(os.path.join(FIXTURES, CHECKPOINTS[name]))) == name


@pytest.mark.parametrize("name, command", [
    ("priorgrad", "a PriorGrad (microsoft/NeuralSpeech) vocoder checkpoint, not an lmnt-com/diffwave one; convert it "
                  "with 'tf-diffwave convert priorgrad ...'"),
    ("wavegrad-ivanvovk", "an ivanvovk/WaveGrad checkpoint, not an lmnt-com/diffwave one; convert it with "
                          "'tf-diffwave convert wavegrad-ivanvovk ...'"),
    ("simple-sashimi", "an RF5/simple-sashimi autoregressive SaShiMi checkpoint, not an lmnt-com/diffwave one")])
def test_convert_lmnt_names_the_format_it_was_given(name, command, tmp_path):
    with pytest.raises(UserError, match=command.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        convert_main(["lmnt", os.path.join(FIXTURES, CHECKPOINTS[name]), str(tmp_path / "out")])
    assert not os.path.exists(tmp_path / "out" / "config.json")


def test_convert_wavegrad_names_an_lmnt_checkpoint(tmp_path):
    with pytest.raises(UserError, match="an lmnt-com/diffwave checkpoint, not an ivanvovk/WaveGrad one; convert it "
                                        "with 'tf-diffwave convert lmnt ...'"):
        convert_main(["wavegrad-ivanvovk", os.path.join(FIXTURES, CHECKPOINTS["lmnt"]),
                      os.path.join(FIXTURES, "wavegrad", "ivanvovk-small.json"), str(tmp_path / "out")])


def test_each_format_has_its_own_help(capsys):
    for name, words in (("lmnt", "lmnt-com/diffwave"), ("wavegrad-ivanvovk", "CONFIG")):
        with pytest.raises(SystemExit) as stop:
            convert_main([name, "--help"])
        assert stop.value.code == 0 and words in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["lmnt"], ["rf5-diffwave", os.path.join(FIXTURES, "rf5-diffwave", "rf5-wavenet-small.json")],
    ["rf5-sashimi-diffwave"], ["simple-sashimi"]])
def test_every_converter_refuses_a_pickle_that_would_run_code(command, tmp_path):
    import pickle

    from tests.helpers import RunsAShellCommand, write_checkpoint

    marker = tmp_path / "ran"
    evil = write_checkpoint(tmp_path / "evil.pt", pickle.dumps({"model_state_dict": RunsAShellCommand(marker)}))
    with pytest.raises(UserError, match=f"{evil}: .*refused") as err:
        convert_main([command[0], evil, *command[1:], str(tmp_path / "out")])
    assert "\n" not in str(err.value) and not marker.exists()
