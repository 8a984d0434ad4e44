"""Streaming vocoding: audio chunks out as mel chunks come in, equal to vocoding the whole utterance."""

import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tests.helpers import DEMO
from tf_diffwave import load
from tf_diffwave.cli.infer import main as infer_main
from tf_diffwave.data.audio import read_audio
from tf_diffwave.diffusion.samplers import per_example_normal
from tf_diffwave.diffusion.streaming import step_lookaheads
from tf_diffwave.errors import UserError


def chunked(mel, size):
    return (mel[i: i + size] for i in range(0, len(mel), size))


def speech_mel(model, frames):
    """The model's features of the bundled recording LJ001-0001, its first `frames` frames."""
    audio = read_audio(os.path.join(DEMO, "wavs", "LJ001-0001.wav"), model.sample_rate)
    return model.features(audio)[:frames]


@pytest.mark.parametrize("start,length", [(0, 9), (1, 7), (3, 300), (256, 512), (257, 5), (4099, 1)])
def test_noise_is_drawn_by_absolute_sample_position(start, length):
    """A window of the noise is the same span of TensorFlow's stateless draw over the whole length."""
    seeds = tf.constant([7, 11], tf.int64)
    for stream in (-1, 3):
        whole = np.stack([tf.random.stateless_normal([start + length], seed=[s, stream]).numpy() for s in (7, 11)])
        window = per_example_normal(seeds, length, stream, start=start).numpy()
        np.testing.assert_array_equal(window, whole[:, start:])


def test_step_lookaheads_share_the_total():
    assert step_lookaheads(10, 4) == [3, 3, 2, 2] and step_lookaheads(42, 6) == [7] * 6
    assert step_lookaheads(0, 3) == [0, 0, 0]


@pytest.mark.parametrize("size", [pytest.param(1, marks=pytest.mark.slow), 7, pytest.param(64, marks=pytest.mark.slow)])
def test_a_streamed_utterance_equals_the_whole_one(tiny_run, size):
    """The tiny DiffWave (PriorGrad's prior: its std per frame) streams the audio `vocode` gives, in final chunks
    whose lengths follow the mel's arrival."""
    model = load(tiny_run)
    mel = speech_mel(model, 40)
    whole = model.vocode(mel, seed=3)
    parts = list(model.stream(chunked(mel, size), seed=3))
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4)
    hop, lookahead = model.config["audio"]["hop_length"], model.exact_lookahead()
    mel_ahead, audio_ahead = model.backbone.lookahead_frames
    assert lookahead == mel_ahead + 5 * audio_ahead  # the first of 6 steps reads the mel, the others the audio
    # the first audio comes with the first chunk that takes the mel past the lookahead: all of it but the lookahead
    arrived = min(-(-(lookahead + 1) // size) * size, len(mel))
    assert len(parts[0]) == (arrived - lookahead) * hop


@pytest.mark.slow
def test_a_long_streamed_utterance_equals_chunked_vocoding(tiny_run):
    """An utterance longer than the chunked vocoder's chunk: `vocode` goes chunk by chunk, streaming as always."""
    model = load(tiny_run)
    model.synthesizer.chunk_frames = 16
    mel = speech_mel(model, 100)
    np.testing.assert_allclose(np.concatenate(list(model.stream(chunked(mel, 64), seed=1))),
                               model.vocode(mel, seed=1), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_streamed_wavegrad_utterance_equals_the_whole_one(tiny_wavegrad_run, size):
    """WaveGrad's windows interpolate at the whole utterance's positions; an utterance longer than the chunked
    vocoder's chunk too."""
    model = load(tiny_wavegrad_run[1])
    mel = speech_mel(model, 30)
    np.testing.assert_allclose(np.concatenate(list(model.stream(chunked(mel, size), seed=2))),
                               model.vocode(mel, seed=2), atol=1e-4)
    model.synthesizer.chunk_frames = 2 * model.backbone.context_frames
    mel = speech_mel(model, 4 * model.backbone.context_frames)
    np.testing.assert_allclose(np.concatenate(list(model.stream(chunked(mel, 64), seed=2))),
                               model.vocode(mel, seed=2), atol=1e-4)


@pytest.mark.slow
def test_a_smaller_lookahead_gives_audio_sooner_that_differs(tiny_run):
    model = load(tiny_run)
    mel = speech_mel(model, 40)
    whole = model.vocode(mel, seed=3)
    parts = list(model.stream(chunked(mel, 1), seed=3, lookahead=0))
    assert len(parts[0]) == model.config["audio"]["hop_length"]  # the first frame's audio at once
    streamed = np.concatenate(parts)
    assert streamed.shape == whole.shape and np.abs(streamed - whole).max() > 1e-4  # beyond the exact bound
    with pytest.raises(UserError, match="lookahead 999: give 0 to"):
        next(model.stream(chunked(mel, 1), lookahead=999))


def test_stream_checks_each_chunk(tiny_run):
    model = load(tiny_run)
    mel = speech_mel(model, 20)
    with pytest.raises(UserError, match="mel chunk 1 has shape .* looks transposed"):
        list(model.stream([mel[:10], mel[10:].T]))
    with pytest.raises(UserError, match="held no frames"):
        list(model.stream([]))


def test_infer_streams_to_a_wav_and_prints_the_latency(tiny_run, tmp_path, capsys):
    out, whole = str(tmp_path / "streamed.wav"), str(tmp_path / "whole.wav")
    infer_main(["--model-dir", tiny_run, "--mel", "LJ001-0001", "--stream", "--chunk-frames", "5", "--out", out])
    printed = capsys.readouterr().out
    model = load(tiny_run)
    lookahead = model.exact_lookahead()
    assert f"lookahead {lookahead} frames" in printed and "exact" in printed and "first audio after" in printed
    infer_main(["--model-dir", tiny_run, "--mel", "LJ001-0001", "--out", whole])
    streamed, rate = soundfile.read(out)
    assert rate == model.sample_rate
    np.testing.assert_allclose(streamed, soundfile.read(whole)[0], atol=1.5 / 32768)  # 16-bit rounding
    with pytest.raises(UserError, match="--stream vocodes one utterance"):
        infer_main(["--model-dir", tiny_run, "--mel", "LJ001-0001", "LJ001-0002", "--stream"])
