"""Corpora from Debian's Asterisk prompt packages, on prompts made here (encoded to G.722 with the same library) in
an installed-folder layout and in a .deb package file: the package itself is not needed."""

import gzip
import io
import logging
import os
import tarfile

import numpy as np
import pytest
import soundfile

from tf_diffwave.data.asterisk import VOICES, build_corpus, trim_silence
from tf_diffwave.errors import UserError

av = pytest.importorskip("av", reason="PyAV is not installed (pip install -e '.[corpus]')")
RATE = 16000


def encode_g722(audio):
    """The bytes of a raw G.722 file of float audio at 16 kHz."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="g722") as out:
        stream = out.add_stream("g722", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray((np.clip(audio, -1, 1) * 32767).astype(np.int16)[None], format="s16",
                                           layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def tone(seconds, lead=0.5, tail=0.25, frequency=220.0):
    """`seconds` of a harmonic tone between `lead` and `tail` seconds of faint noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = 0.4 * np.sin(2 * np.pi * frequency * t) + 0.1 * np.sin(2 * np.pi * 3 * frequency * t)
    noise = lambda s: np.random.default_rng(0).normal(0, 1e-4, int(s * RATE))  # noqa: E731
    return np.concatenate([noise(lead), voiced, noise(tail)]).astype(np.float32)


PROMPTS = {"hello": tone(0.6), "digits/1": tone(0.3, frequency=330.0), "silence/1": np.zeros(RATE, np.float32),
           "beep": tone(0.2, frequency=1000.0)}
TEXTS = "; Core Asterisk Sounds in English\n\nhello: Hello there.\ndigits/1: one\nsilence/1: (1 second of silence)\n" \
        "beep: [this is a simple beep tone]\n"


@pytest.fixture(scope="module")
def encoded():
    return {name: encode_g722(audio) for name, audio in PROMPTS.items()}


def installed_layout(root, encoded):
    """The files `apt-get install asterisk-core-sounds-en-g722` (and -en) leave: (sounds dir, transcripts)."""
    for name, data in encoded.items():
        path = root / "sounds" / "en_US_f_Allison" / f"{name}.g722"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "core-sounds-en.txt.gz").write_bytes(gzip.compress(TEXTS.encode()))
    return str(root / "sounds"), str(root / "core-sounds-en.txt.gz")


def tar_xz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deb_file(path, encoded, package="asterisk-core-sounds-en-g722"):
    """A Debian package file as dpkg-deb builds it: an ar archive of debian-binary, control.tar.xz, data.tar.xz."""
    control = tar_xz({"./control": f"Package: {package}\nVersion: 1.6.1-1\nArchitecture: all\n".encode()})
    data = tar_xz({f"./usr/share/asterisk/sounds/en_US_f_Allison/{n}.g722": d for n, d in encoded.items()})
    out = bytearray(b"!<arch>\n")
    for name, content in (("debian-binary", b"2.0\n"), ("control.tar.xz", control), ("data.tar.xz", data)):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode() + content
        out += b"\n" if len(content) % 2 else b""
    path.write_bytes(bytes(out))
    return str(path)


def read_metadata(folder):
    return [line.split("|") for line in open(os.path.join(folder, "metadata.csv"), encoding="utf-8").read().split("\n")
            if line]


def test_an_installed_voice_becomes_an_ljspeech_corpus_of_its_speech_prompts(tmp_path, encoded):
    sounds, texts = installed_layout(tmp_path, encoded)
    out = str(tmp_path / "corpus")
    made = build_corpus("en", out, sounds_dir=sounds, transcripts=texts)
    rows = read_metadata(out)
    assert made["prompts"] == 2 and made["skipped"] == 2  # the silence and the beep are not speech
    assert sorted(row[0] for row in rows) == ["digits_1", "hello"]
    assert dict((row[0], row[1]) for row in rows) == {"hello": "Hello there.", "digits_1": "one"}
    assert all(len(row) == 3 and row[1] == row[2] for row in rows)
    audio, rate = soundfile.read(os.path.join(out, "wavs", "hello.wav"), dtype="float32")
    assert rate == RATE and soundfile.info(os.path.join(out, "wavs", "hello.wav")).subtype == "PCM_16"
    # the 0.5 s of near-silence before and 0.25 s after the 0.6 s tone are trimmed to about 50 ms each
    assert 0.6 * RATE <= len(audio) <= 0.75 * RATE
    licence = open(os.path.join(out, "LICENSE.md"), encoding="utf-8").read()
    assert "Allison Smith" in licence and "CC-BY-SA-3.0" in licence and "creativecommons.org" in licence
    assert sorted(os.listdir(tmp_path)) == ["core-sounds-en.txt.gz", "corpus", "sounds"]  # nothing else left


def test_the_package_file_gives_the_same_corpus_resampled_where_asked(tmp_path, encoded):
    sounds, texts = installed_layout(tmp_path, encoded)
    build_corpus("en", str(tmp_path / "installed"), sounds_dir=sounds, transcripts=texts)
    deb = deb_file(tmp_path / "asterisk-core-sounds-en-g722_1.6.1-1_all.deb", encoded)
    made = build_corpus("en", str(tmp_path / "deb"), deb=deb, transcripts=texts)
    assert made["version"] == "1.6.1-1" and read_metadata(tmp_path / "deb") == read_metadata(tmp_path / "installed")
    a, _ = soundfile.read(tmp_path / "installed" / "wavs" / "hello.wav", dtype="float32")
    b, _ = soundfile.read(tmp_path / "deb" / "wavs" / "hello.wav", dtype="float32")
    np.testing.assert_array_equal(a, b)
    build_corpus("en", str(tmp_path / "22k"), 22050, deb=deb, transcripts=texts)
    c, rate = soundfile.read(tmp_path / "22k" / "wavs" / "hello.wav", dtype="float32")
    assert rate == 22050 and abs(len(c) - len(a) * 22050 / RATE) <= 1


def test_trimming_keeps_the_margin_around_the_loud_part():
    audio = np.concatenate([np.zeros(RATE), np.ones(RATE // 2) * 0.5, np.zeros(RATE)]).astype(np.float32)
    trimmed = trim_silence(audio, RATE, 40.0, margin_seconds=0.05)
    assert len(trimmed) == RATE // 2 + 2 * 800 and np.all(trimmed[:800] == 0) and trimmed[800] == 0.5


def test_what_is_missing_is_one_line_naming_the_command_that_installs_it(tmp_path, encoded, monkeypatch):
    with pytest.raises(UserError, match="not found; install the recordings with 'apt-get install "
                                        "asterisk-core-sounds-it-g722'"):
        build_corpus("it", str(tmp_path / "it"), sounds_dir=str(tmp_path))
    with pytest.raises(UserError, match="--language xx: the Asterisk prompt packages have en, es, fr, it, ru"):
        build_corpus("xx", str(tmp_path / "xx"))
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # PyAV not installed
    with pytest.raises(UserError, match=r"decoding G.722 needs PyAV: pip install av"):
        build_corpus("en", str(tmp_path / "en"), sounds_dir=str(tmp_path))
    assert set(VOICES) == {"en", "es", "fr", "it", "ru"}


def test_an_empty_recording_is_left_out_with_a_warning_and_a_damaged_package_leaves_nothing(tmp_path, encoded,
                                                                                        caplog):
    sounds, texts = installed_layout(tmp_path, {**encoded, "hello": b""})  # G.722 has no header: only empty fails
    logger = logging.getLogger("tf_diffwave")  # the commands stop its records reaching the root logger
    logger.addHandler(caplog.handler)
    try:
        made = build_corpus("en", str(tmp_path / "corpus"), sounds_dir=sounds, transcripts=texts)
    finally:
        logger.removeHandler(caplog.handler)
    assert (made["prompts"], made["unreadable"]) == (1, 1)
    assert "hello: no audio in this G.722 file; left out" in caplog.text
    assert [row[0] for row in read_metadata(tmp_path / "corpus")] == ["digits_1"]
    before = sorted(os.listdir(tmp_path))
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"!<arch>\nnonsense")
    with pytest.raises(UserError, match=f"{bad}: "):
        build_corpus("en", str(tmp_path / "other"), deb=str(bad))
    other = deb_file(tmp_path / "fr.deb", encoded, package="asterisk-core-sounds-fr-g722")
    with pytest.raises(UserError, match="package 'asterisk-core-sounds-fr-g722', not asterisk-core-sounds-en-g722"):
        build_corpus("en", str(tmp_path / "other"), deb=other)
    assert sorted(os.listdir(tmp_path)) == sorted([*before, "bad.deb", "fr.deb"])  # no corpus, whole or partial


def test_the_command_writes_the_corpus_and_says_what_it_made(tmp_path, encoded, capsys):
    from tf_diffwave.cli.corpus import main

    deb = deb_file(tmp_path / "en.deb", encoded)
    main(["asterisk", "--deb", deb, "--out-dir", str(tmp_path / "corpus")])
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.startswith(f"wrote {tmp_path / 'corpus'}: ") and "prompts" in said and "LICENSE.md" in said
    with pytest.raises(UserError, match="already exists; give a new folder"):
        main(["asterisk", "--deb", deb, "--out-dir", str(tmp_path / "corpus")])
