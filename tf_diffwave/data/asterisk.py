"""Corpora of real recorded speech from Debian's Asterisk prompt packages, in the LJSpeech layout.

Each `asterisk-core-sounds-<language>-g722` package holds a few hundred studio prompts of one professional voice,
G.722 at 16 kHz (content up to about 7 kHz), under Creative Commons licences. They install from Debian's archive
(`apt-get install`), or are read from the package file itself (`apt-get download`). G.722 is decoded with PyAV
(FFmpeg's decoder, shipped in PyAV's wheels: nothing to compile and no system FFmpeg needed). Leading and trailing
silence is trimmed, the audio resampled where asked, and the licence and attribution written beside the data.
"""

import dataclasses
import gzip
import hashlib
import io
import logging
import os
import subprocess
import tarfile

import numpy as np
import soundfile

from tf_diffwave.atomic import whole_folder
from tf_diffwave.errors import UserError

logger = logging.getLogger(__name__)

SOUNDS = "/usr/share/asterisk/sounds"
NATIVE_RATE = 16000  # G.722's


@dataclasses.dataclass(frozen=True)
class Voice:
    """One language's prompt package: its voice folder, speaker and licence (from the package's copyright file)."""

    language: str
    folder: str
    speaker: str
    licence: str

    @property
    def package(self):
        return f"asterisk-core-sounds-{self.language}-g722"

    @property
    def transcripts(self):
        """The prompts' texts, shipped by the language's main package (asterisk-core-sounds-<language>)."""
        return f"/usr/share/doc/asterisk-core-sounds-{self.language}/core-sounds-{self.language}.txt.gz"


LICENCES = {"CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
            "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/"}
VOICES = {voice.language: voice for voice in (
    Voice("en", "en_US_f_Allison", "Allison Smith (theivrvoice.com)", "CC-BY-SA-3.0"),
    Voice("es", "es_MX_f_Allison", "Allison Smith (theivrvoice.com), the English voice in Spanish", "CC-BY-SA-3.0"),
    Voice("fr", "fr_CA_f_June", "June Wallack (junewallack.com)", "CC-BY-SA-3.0"),
    Voice("it", "it_IT_m_Carlo", "Carlo Flora (carloflora.com)", "CC-BY-3.0"),
    Voice("ru", "ru_RU_f_IvrvoiceRU", "Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"),
)}


def g722_decoder():
    """PyAV's module, or a UserError saying how to install it."""
    try:
        import av
    except ImportError:
        raise UserError("decoding G.722 needs PyAV: pip install av (or pip install 'tf-diffwave[corpus]')") from None
    return av


def decode_g722(data, name):
    """Float32 audio at 16 kHz from the bytes of a raw G.722 file (`name` for errors)."""
    av = g722_decoder()
    try:
        with av.open(io.BytesIO(data), format="g722") as container:
            frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    except (av.error.FFmpegError, ValueError) as err:
        raise UserError(f"{name}: not a G.722 recording ({err})") from None
    if not frames:
        raise UserError(f"{name}: no audio in this G.722 file")
    return np.concatenate(frames).astype(np.float32) / 32768.0


def trim_silence(audio, sample_rate, below_peak_db, margin_seconds=0.05, window_seconds=0.02):
    """`audio` without its leading and trailing silence: the 20 ms windows whose RMS is more than `below_peak_db`
    under the loudest window's, keeping `margin_seconds` of them at each end."""
    window = int(window_seconds * sample_rate)
    count = len(audio) // window
    if count == 0:
        return audio
    rms = np.sqrt(np.mean(np.square(audio[: count * window].reshape(count, window), dtype=np.float64), axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10)) > -below_peak_db)
    if loud.size == 0:
        return audio[:0]
    margin = int(margin_seconds * sample_rate)
    return audio[max(loud[0] * window - margin, 0): min((loud[-1] + 1) * window + margin, len(audio))]


def installed_prompts(voice, sounds_dir=SOUNDS):
    """{prompt name ("digits/1"): path} of an installed voice folder, or a UserError naming the install command."""
    folder = os.path.join(sounds_dir, voice.folder)
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: not found; install the recordings with 'apt-get install {voice.package}', or "
                        f"give the package file with --deb (apt-get download {voice.package})")
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name.endswith(".g722"):
                path = os.path.join(root, name)
                found[os.path.relpath(path, folder)[: -len(".g722")]] = path
    if not found:
        raise UserError(f"{folder}: no .g722 recordings in it ({voice.package} installs them)")
    return found


def deb_members(path):
    """{member name: bytes} of a Debian package file (an ar archive)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({err.strerror})") from None
    if not data.startswith(b"!<arch>\n"):
        raise UserError(f"{path}: not a Debian package (.deb) file")
    members, offset = {}, 8
    while offset + 60 <= len(data):
        header = data[offset: offset + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise UserError(f"{path}: a damaged .deb file (member header at byte {offset})") from None
        members[name] = data[offset + 60: offset + 60 + size]
        offset += 60 + size + size % 2
    return members


def deb_prompts(voice, path):
    """({prompt name: G.722 bytes}, the package's version) from the package file of `voice`."""
    members = deb_members(path)
    payload = next((members[n] for n in members if n.startswith("data.tar")), None)
    control = next((members[n] for n in members if n.startswith("control.tar")), None)
    if payload is None or control is None:
        raise UserError(f"{path}: not a Debian package (.deb) file (no data.tar or control.tar member)")
    prefix = f"./usr/share/asterisk/sounds/{voice.folder}/"
    try:
        with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
            prompts = {m.name[len(prefix): -len(".g722")]: archive.extractfile(m).read() for m in archive
                       if m.isfile() and m.name.startswith(prefix) and m.name.endswith(".g722")}
        with tarfile.open(fileobj=io.BytesIO(control)) as archive:
            fields = archive.extractfile("./control").read().decode("utf-8", "replace")
    except (tarfile.TarError, KeyError, EOFError) as err:
        raise UserError(f"{path}: a damaged .deb file ({err})") from None
    package = next((line.split(":", 1)[1].strip() for line in fields.splitlines() if line.startswith("Package:")), "")
    if package != voice.package or not prompts:
        raise UserError(f"{path}: package '{package}', not {voice.package} (the '{voice.language}' voice)")
    version = next(line.split(":", 1)[1].strip() for line in fields.splitlines() if line.startswith("Version:"))
    return prompts, version


def installed_version(package):
    """The installed version of a Debian package, or "" where dpkg cannot say."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def read_transcripts(path):
    """{prompt name: text} from a core-sounds-<language>.txt(.gz) file ("name: text" lines), {} when missing."""
    if not os.path.isfile(path):
        return {}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = [line.rstrip("\n") for line in f if ":" in line and not line.startswith(";")]
    return {name.strip(): text.strip() for name, text in (line.split(":", 1) for line in lines)}


def is_speech(name, text):
    """Whether a prompt is speech: not the silence/ folder, not a tone or silence whose text is [bracketed] or
    (parenthesised)."""
    return not name.startswith("silence/") and not text.startswith(("[", "("))


def build_corpus(language, out_dir, sample_rate=NATIVE_RATE, below_peak_db=40.0, deb=None, sounds_dir=SOUNDS,
                 transcripts=None, on_prompt=None):
    """Write the LJSpeech-layout corpus (wavs/<id>.wav, 16-bit PCM; metadata.csv "id|text|text") of a language's
    prompts to `out_dir`, which must not exist yet, whole or not at all (it is written beside and renamed). The
    prompts come from the installed package, or from its package file `deb`; ids are their names with "/" as
    "_". Their order is a fixed shuffle (by hash of the name), so that the last utterances, which training holds
    out, are a sample of every kind of prompt. Returns {"prompts", "seconds", "skipped", "version"}."""
    if language not in VOICES:
        raise UserError(f"--language {language}: the Asterisk prompt packages have {', '.join(VOICES)}")
    voice = VOICES[language]
    if os.path.exists(out_dir):
        raise UserError(f"{out_dir}: already exists; give a new folder")
    g722_decoder()  # before any work
    if deb is not None:
        sources, version = deb_prompts(voice, deb)
        read = sources.__getitem__
    else:
        sources, version = installed_prompts(voice, sounds_dir), installed_version(voice.package)
        read = lambda name: open(sources[name], "rb").read()  # noqa: E731
    texts = read_transcripts(voice.transcripts if transcripts is None else transcripts)
    names = sorted((n for n in sources if is_speech(n, texts.get(n, ""))),
                   key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    with whole_folder(out_dir) as partial:
        rows, seconds, unreadable = [], 0.0, 0
        os.makedirs(os.path.join(partial, "wavs"))
        for i, name in enumerate(names):
            try:
                audio = trim_silence(decode_g722(read(name), name), NATIVE_RATE, below_peak_db)
            except UserError as err:  # one empty prompt (the Russian package has one) costs that prompt alone
                logger.warning(f"{err}; left out")
                unreadable += 1
                continue
            if sample_rate != NATIVE_RATE:
                import soxr

                audio = soxr.resample(audio, NATIVE_RATE, sample_rate, quality="VHQ").astype(np.float32)
            utterance = name.replace("/", "_")
            soundfile.write(os.path.join(partial, "wavs", f"{utterance}.wav"), np.clip(audio, -1, 1), sample_rate,
                            subtype="PCM_16")
            text = " ".join(texts.get(name, name.replace("/", " ").replace("-", " ")).split()).replace("|", " ")
            rows.append(f"{utterance}|{text}|{text}")
            seconds += len(audio) / sample_rate
            if on_prompt is not None:
                on_prompt(i + 1, len(names))
        if not rows:
            raise UserError(f"{deb or voice.folder}: none of the {len(names)} prompts could be decoded")
        with open(os.path.join(partial, "metadata.csv"), "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        write_attribution(partial, voice, version, sample_rate, below_peak_db, len(rows), seconds)
    return {"prompts": len(rows), "seconds": seconds, "skipped": len(sources) - len(rows) - unreadable,
            "unreadable": unreadable, "version": version}


def write_attribution(folder, voice, version, sample_rate, below_peak_db, count, seconds):
    """LICENSE.md beside the data: who recorded it, where it came from, its licence and what was changed."""
    rate = f"resampled to {sample_rate} Hz" if sample_rate != NATIVE_RATE else f"kept at {sample_rate} Hz"
    text = (f"# {count} prompts of {voice.speaker}, {seconds / 60:.1f} minutes\n\n"
            f"Recorded by {voice.speaker} for the Asterisk project. Taken from Debian's `{voice.package}` package "
            f"{version or '(version unknown)'} (the `{voice.folder}` voice), whose copyright file gives the "
            f"licence: {voice.licence}, {LICENCES[voice.licence]}.\n\n"
            f"Changes made by `tf-diffwave corpus asterisk`: decoded from G.722 (16 kHz); leading and trailing audio "
            f"more than {below_peak_db:g} dB below the loudest 20 ms trimmed (50 ms kept at each end); {rate}; "
            f"written as 16-bit WAV; silence and tone prompts left out. This corpus is shared under the same "
            f"licence.\n")
    with open(os.path.join(folder, "LICENSE.md"), "w", encoding="utf-8") as f:
        f.write(text)
