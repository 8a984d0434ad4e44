"""The `tf-diffwave train`, `infer` and `preprocess` commands (also train.py, infer.py and preprocess.py)."""

import argparse
import json
import os

import numpy as np
import soundfile
import tensorflow as tf

from tf_diffwave.audio import read_audio, write_wav
from tf_diffwave.backbones import tf32_allowed
from tf_diffwave.bundled import bundled
from tf_diffwave.config import load_config, with_model_of
from tf_diffwave.corpora import read_corpus
from tf_diffwave.dataset import mel_path, read_mel
from tf_diffwave.errors import UserError
from tf_diffwave.features import LogMel
from tf_diffwave.model_io import DEFAULT_MODEL_DIR, PRECISION_POLICIES, load
from tf_diffwave.progress import progress_bar

AUDIO_EXTENSIONS = {f".{name.lower()}" for name in soundfile.available_formats()}  # what read_audio can read


def _config_parser(description, prog):
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="JSON config file (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    return parser


def start_run(config):
    """The process-wide settings a command takes from the config of its model, set where the command starts (not
    by library code): whether GPU matmuls may use TF32 (config key `model.tf32`)."""
    tf.config.experimental.enable_tensor_float_32_execution(tf32_allowed(config))


def train_main(argv=None, prog=None):
    """tf-diffwave train --config CFG [key=value ...]"""
    from tf_diffwave.trainer import Trainer

    args = _config_parser("Train a DiffWave model.", prog).parse_args(argv)
    config = with_model_of(load_config(args.config, args.overrides), args.overrides)
    start_run(config)
    Trainer(config).train()


def preprocess_main(argv=None, prog=None):
    """tf-diffwave preprocess --config CFG [key=value ...]: write <data.mel_dir>/<id>.npy for every utterance."""
    args = _config_parser("Compute the mel features of a corpus.", prog).parse_args(argv)
    config = load_config(args.config, args.overrides)
    mel_dir = config["data"]["mel_dir"]
    if not mel_dir:
        raise UserError("config key 'data.mel_dir' is empty: name the folder to write the mels to")
    corpus = read_corpus(config["data"])
    os.makedirs(mel_dir, exist_ok=True)
    log_mel = LogMel.from_config(config["audio"]).traced()
    progbar = progress_bar(len(corpus.ids), "file")
    for n, utterance in enumerate(corpus.ids, 1):
        audio = read_audio(corpus.wav_paths[utterance], config["audio"]["sample_rate"])
        out = mel_path(mel_dir, utterance)
        os.makedirs(os.path.dirname(out), exist_ok=True)  # SC09 ids name a digit folder
        np.save(out, log_mel(audio).numpy())
        progbar.update(n)
    print(f"wrote {len(corpus.ids)} mels to {mel_dir}")


def _existing(path):
    """`path` as given if it exists, else a shipped file of that name (the demo corpus), else None."""
    for candidate in (path, bundled(path)):
        if path and os.path.exists(candidate):
            return candidate
    return None


def resolve_mel(spec, model):
    """The mel named by `spec`: a .npy file, an audio file (.wav, .flac, ...), or an utterance id of the model's
    corpus."""
    config = model.config
    n_mels = config["audio"]["n_mels"]
    extension = os.path.splitext(spec)[1].lower()
    if extension == ".npy":
        return read_mel(spec, n_mels)
    if extension in AUDIO_EXTENSIONS:
        return model.features(read_audio(spec, model.sample_rate), spec)
    if extension:
        raise UserError(f"{spec}: --mel takes utterance ids, .npy mel arrays or audio files (.wav, .flac, ...), not "
                        f"{extension} files")
    data = config["data"]
    mel_dir = _existing(data["mel_dir"])
    if mel_dir and os.path.isfile(mel_path(mel_dir, spec)):
        return read_mel(mel_path(mel_dir, spec), n_mels)
    corpus_dir = _existing(data["path"])
    if corpus_dir and os.path.isfile(os.path.join(corpus_dir, "wavs", f"{spec}.wav")):
        path = os.path.join(corpus_dir, "wavs", f"{spec}.wav")
        return model.features(read_audio(path, model.sample_rate), path)
    raise UserError(f"utterance id '{spec}' not found (looked for {spec}.npy in data.mel_dir "
                    f"'{data['mel_dir']}' and wavs/{spec}.wav in data.path '{data['path']}')")


def parse_steps(text, names):
    """A schedule named in `names` ('fast', 'full', a family's named ones), or a JSON list of betas."""
    if text in names:
        return text
    try:
        betas = json.loads(text)
    except json.JSONDecodeError:
        betas = None
    if not isinstance(betas, list) or not all(isinstance(b, (int, float)) for b in betas):
        raise UserError(f"--steps must be {', '.join(names)} or a JSON list of betas, got {text!r}")
    return betas


def check_outputs(args):
    """Raise UserError, before any computing, when infer's outputs cannot be written where the arguments say."""
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UserError(f"{args.out_dir}: --out-dir names a file, not a folder")
    if args.out and os.path.isdir(args.out):
        raise UserError(f"{args.out}: --out names a folder; use --out-dir for folders")
    if args.out and not args.out.lower().endswith(".wav"):
        raise UserError(f"{args.out}: outputs are 16-bit WAV files; give --out a name ending in .wav")


def output_name(spec, model):
    """<out-dir> file name of the audio vocoded from `spec`: named after the input and the model, so that models
    do not overwrite each other's results (LJ001-0001 with checkpoints/demo at step 14000:
    LJ001-0001_demo-14000.wav)."""
    tag = os.path.basename(os.path.normpath(model.model_dir))
    return f"{os.path.splitext(os.path.basename(spec))[0]}_{tag}-{model.step}.wav"


def infer_main(argv=None, prog=None):
    """tf-diffwave infer --mel ID|FILE.npy|FILE.wav [...] [--model-dir DIR] [--out FILE] [--steps NAME] (vocoders)
    tf-diffwave infer --model-dir DIR --n-samples N [--batch-size B] [--seed S] [--out-dir OUT] (unconditional)"""
    parser = argparse.ArgumentParser(prog=prog, description="Vocode mel spectrograms with a trained DiffWave "
                                                            "vocoder, or generate clips with an unconditional one.")
    parser.add_argument("--mel", nargs="+", help="vocoders: utterance ids, .npy mels or audio files")
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help="run folder (default: bundled demo)")
    parser.add_argument("--out", help="output WAV (one --mel only); default: <id>_<model>-<step>.wav in --out-dir")
    parser.add_argument("--out-dir", default=".", help="folder for the outputs (default: current folder)")
    parser.add_argument("--steps", default="fast",
                        help="inference schedule: fast (default), full, one the model's family ships (WaveGrad: 6, "
                             "12, 25, 50, 100, 1000), or a JSON list of betas")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first example; example i uses seed + i")
    parser.add_argument("--precision", choices=list(PRECISION_POLICIES), default="float32",
                        help="what the networks compute in: float32 (default), bfloat16 (CPUs with AVX-512 BF16 or "
                             "AMX), float16 (GPUs); the sampler stays float32")
    parser.add_argument("--n-samples", type=int, default=16, help="unconditional models: clips to generate")
    parser.add_argument("--batch-size", type=int, default=16, help="unconditional models: clips per batch")
    parser.add_argument("--temperature", type=float, help="autoregressive models: sampling temperature (default: "
                                                          "the config's)")
    parser.add_argument("--top-p", type=float, help="autoregressive models: nucleus sampling mass (default: the "
                                                    "config's)")
    parser.add_argument("--prompt", help="autoregressive models: an audio file whose beginning every clip continues")
    args = parser.parse_args(argv)
    check_outputs(args)
    model = load(args.model_dir, args.precision)
    start_run(model.config)
    args.steps = parse_steps(args.steps, model.sampler.names)
    if model.unconditional:
        generate_clips(model, args)
        return
    if not args.mel:
        raise UserError(f"{args.model_dir}: this model is a vocoder; give --mel with utterance ids, .npy or .wav files")
    if args.out and len(args.mel) > 1:
        raise UserError("--out names one file; with several --mel inputs use --out-dir")
    mels = [resolve_mel(spec, model) for spec in args.mel]
    frames = max(len(m) for m in mels)
    silence = model.log_mel.silence
    batch = np.stack([np.pad(m, ((0, frames - len(m)), (0, 0)), constant_values=silence) for m in mels])
    audio = model.vocode(batch, steps=args.steps, seed=args.seed)
    hop = model.config["audio"]["hop_length"]
    for spec, mel, wave in zip(args.mel, mels, audio):
        out = args.out or os.path.join(args.out_dir, output_name(spec, model))
        write_wav(out, wave[: len(mel) * hop], model.sample_rate)
        print(f"wrote {out} ({len(mel) * hop / model.sample_rate:.2f} s)")


def generate_clips(model, args):
    """Write --n-samples clips of an unconditional model as <out-dir>/seed_<seed>.wav, in batches."""
    if args.mel:
        raise UserError(f"{args.model_dir}: this model is unconditional; it takes no --mel (use --n-samples)")
    own_sampling = model.backbone.own_sampler(model.config) is not None
    if not own_sampling and (args.temperature is not None or args.top_p is not None or args.prompt):
        raise UserError(f"{args.model_dir}: --temperature, --top-p and --prompt are for autoregressive models")
    prompt = read_audio(args.prompt, model.sample_rate) if args.prompt else None
    progbar = progress_bar(args.n_samples, "clip")
    length = model.config["model"]["audio_length"]
    samples = None

    def on_sample(done):  # autoregressive models: a bar over the samples of each batch
        nonlocal samples
        samples = samples or progress_bar(length, "sample")
        samples.update(min(int(done), length))

    def on_batch(done):
        nonlocal samples
        samples = None
        progbar.update(done)

    clips = model.unconditional_generate(args.n_samples, seed=args.seed, steps=args.steps,
                                         batch_size=args.batch_size, on_batch=on_batch,
                                         temperature=args.temperature, top_p=args.top_p, prompt=prompt,
                                         on_sample=on_sample if own_sampling else None)
    for i, clip in enumerate(clips):
        write_wav(os.path.join(args.out_dir, f"seed_{args.seed + i}.wav"), clip, model.sample_rate)
    print(f"wrote {len(clips)} clips to {args.out_dir}")
