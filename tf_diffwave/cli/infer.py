"""tf-diffwave infer (also python infer.py): vocode mels with a model folder, or generate clips with an
unconditional one. The sampling options of the model's kind (a diffusion schedule, an autoregressive family's
sampling flags) are offered for the model --model-dir names."""

import argparse
import os

from tf_diffwave.cli.common import (
    add_model_dir,
    add_precision,
    apply_model_settings,
    parse_steps,
    say_precision,
    writable_file,
    writable_folder,
)
from tf_diffwave.config import load_run_config
from tf_diffwave.data.audio import READABLE_EXTENSIONS, read_audio, write_wav
from tf_diffwave.data.corpora import read_corpus
from tf_diffwave.data.front_ends import FRONT_ENDS
from tf_diffwave.data.mel_files import read_mel, utterance_mel
from tf_diffwave.errors import UserError
from tf_diffwave.models import registry
from tf_diffwave.pipelines import kind_of
from tf_diffwave.shipped import DEMO_CORPUS_DIR, existing_path
from tf_diffwave.tensorflow_import import import_tensorflow


def resolve_mel(spec, model):
    """The mel named by `spec`: a .npy file, an audio file (.wav, .flac, ...), or an utterance id of the model's
    corpus (its precomputed mel if data.mel_dir has one, else its recording's) or of the bundled demo corpus."""
    config = model.config
    n_mels = config["audio"]["n_mels"]
    extension = os.path.splitext(spec)[1].lower()
    if extension == ".npy":
        return read_mel(spec, n_mels)
    if extension in READABLE_EXTENSIONS:
        return model.features(read_audio(spec, model.sample_rate), spec)
    if extension:
        raise UserError(f"{spec}: --mel takes utterance ids, .npy mel arrays or audio files (.wav, .flac, ...), not "
                        f"{extension} files")
    data = config["data"]

    def recording():
        for corpus_dir in (existing_path(data["path"]), DEMO_CORPUS_DIR):
            path = read_corpus(dict(data, path=corpus_dir)).wav_paths.get(spec) if corpus_dir else None
            if path is not None:
                return model.features(read_audio(path, model.sample_rate), path)
        raise UserError(f"utterance id '{spec}' not found (neither {spec}.npy in data.mel_dir '{data['mel_dir']}' "
                        f"nor an utterance of the corpus in data.path '{data['path']}' or of the demo corpus)")

    return utterance_mel(dict(data, mel_dir=existing_path(data["mel_dir"]) or ""), n_mels, spec, recording)


def given_mel(spec, model, args):
    """The mel named by `spec` in the model's features: a .npy mel converted from --mel-convention if given, its
    stated front end checked against the model's (or refitted to it with --refit-mel), its values checked, and its
    rhythm where its frames were not stated (ids and audio files are computed in the model's features)."""
    from tf_diffwave.data.front_ends import check_front_end, described, differences, mel_settings
    from tf_diffwave.data.mel_conventions import check_mel, convert
    from tf_diffwave.data.mel_refit import refit
    from tf_diffwave.data.speech_rhythm import SPEECH_RATE, warn_if_not_speech_rhythm

    mel = resolve_mel(spec, model)
    if not spec.lower().endswith(".npy"):
        return mel
    audio = model.config["audio"]
    settings = mel_settings(audio, args.front_end, args.mel_rate, args.mel_hop, args.mel_fmax)
    if not args.refit_mel:
        check_front_end(spec, settings, audio)
    convention = args.mel_convention or (FRONT_ENDS[args.front_end].convention if args.front_end else None)
    if convention:
        options = {name: getattr(args, name) for name in ("max_norm", "min_level_db", "ref_level_db")
                   if getattr(args, name) is not None}
        if args.mel_stats:
            options["stats"] = read_mel(args.mel_stats, model.n_mels)  # (2, n_mels): mean and scale
        mel = convert(mel, convention, model.log_mel, **options)
    if args.refit_mel and differences(settings, audio):
        mel = refit(mel, settings, model.log_mel)
    check_mel(mel, model.log_mel, spec)
    if not (args.front_end or args.mel_rate or args.mel_hop or args.mel_fmax):  # the settings taken are said
        rate = warn_if_not_speech_rhythm(mel, model.log_mel, spec)
        if rate is None or SPEECH_RATE[0] <= rate <= SPEECH_RATE[1]:
            print(f"{spec}: read as made at {described(audio)} (this model's); if it was made otherwise, say so "
                  f"with --front-end or --mel-rate, --mel-hop and --mel-fmax")
    return mel


def model_tag(model):
    """What output names carry of the model: its folder's name and step (checkpoints/demo at step 10000:
    demo-10000), so that two models' outputs never overwrite each other."""
    return f"{os.path.basename(os.path.normpath(model.model_dir))}-{model.step}"


def output_name(spec, model):
    """<out-dir> file name of the audio vocoded from `spec`: LJ001-0001 with checkpoints/demo at step 10000 gives
    LJ001-0001_demo-10000.wav."""
    return f"{os.path.splitext(os.path.basename(spec))[0]}_{model_tag(model)}.wav"


def _flag(name):
    return "--" + name.replace("_", "-")


def make_parser(prog, config=None, add_help=True):
    """The parser, with the sampling options of the model a `config` describes, if given."""
    parser = argparse.ArgumentParser(prog=prog, add_help=add_help,
                                     description="Vocode mel spectrograms with a vocoder (DiffWave, WaveGrad), or "
                                                 "generate clips with an unconditional model.")
    parser.add_argument("--mel", nargs="+", help="vocoders: utterance ids, .npy mels or audio files")
    add_model_dir(parser)
    parser.add_argument("--out", help="output WAV (one --mel only); default: <id>_<model>-<step>.wav in --out-dir")
    parser.add_argument("--out-dir", default=".", help="folder for the outputs (default: current folder)")
    add_steps(parser, config)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first example; example i uses seed + i")
    add_precision(parser)
    parser.add_argument("--mel-convention", choices=["ln", "log10", "db", "lmnt"],
                        help="vocoders: the convention of the .npy mels, converted to the model's features: ln "
                             "(HiFi-GAN, Tacotron 2, FastSpeech 2), log10 (ESPnet, ParallelWaveGAN; with --mel-stats), "
                             "db (Coqui TTS; with --max-norm, --min-level-db, --ref-level-db), lmnt (lmnt-com/diffwave)"
                             "; see docs/vocoding.md")
    parser.add_argument("--front-end", choices=sorted(FRONT_ENDS),
                        help="vocoders: the front end the .npy mels come from: their rate, hop and band are checked "
                             "against the model's, and their convention converted (" +
                             "; ".join(f"{name}: {f.title}, {f.rate} Hz, hop {f.hop}, to {f.fmax:g} Hz, {f.convention}"
                                       for name, f in FRONT_ENDS.items()) + ")")
    parser.add_argument("--mel-rate", type=float, help="vocoders: the sample rate the .npy mels were made at (checked)")
    parser.add_argument("--mel-hop", type=int, help="vocoders: the hop length the .npy mels were made with (checked)")
    parser.add_argument("--mel-fmax", type=float, help="vocoders: the top of the .npy mels' filterbank, Hz (checked)")
    parser.add_argument("--refit-mel", action="store_true",
                        help="vocoders: resample the frames and refilter the bands of .npy mels made at the rate, hop "
                             "or band --front-end or --mel-rate/--mel-hop/--mel-fmax state to the model's (an "
                             "approximation; see docs/vocoding.md)")
    parser.add_argument("--mel-stats", help="log10 mels: a .npy (2, n_mels) of the mean and scale they were "
                                            "normalised with")
    for name, default in (("max_norm", 4.0), ("min_level_db", -100.0), ("ref_level_db", 20.0)):
        parser.add_argument(_flag(name), type=float, help=f"db mels: Coqui TTS's {name} (default {default:g})")
    parser.add_argument("--stream", action="store_true",
                        help="vocoders: feed the mel in chunks of --chunk-frames as a TTS front end would, write the "
                             "WAV as its audio becomes final, and print the lookahead and the time to the first audio")
    parser.add_argument("--chunk-frames", type=int, default=16, help="--stream: mel frames per chunk (default 16)")
    parser.add_argument("--lookahead", type=int,
                        help="--stream: mel frames waited for beyond a sample's own (default: the exact lookahead, "
                             "which makes the audio equal to whole vocoding; fewer: lower latency, audio that differs)")
    parser.add_argument("--n-samples", type=int, default=16, help="unconditional models: clips to generate")
    parser.add_argument("--batch-size", type=int, default=16, help="unconditional models: clips per batch")
    family = registry.family_of(config) if config else None
    for flag in family.sampling_flags if family else ():
        parser.add_argument(_flag(flag.name), dest=flag.name, type=None if flag.kind == "audio" else flag.kind,
                            help=f"{family.title} models: {flag.help}")
    return parser


def add_steps(parser, config):
    """--steps, with the schedule names of the model a `config` describes (if given)."""
    names = kind_of(config).schedule_names(config, registry.family_of(config)) if config else []
    listed = f"this model's: {', '.join(names)}" if names else "fast, full, those the model's family ships"
    parser.add_argument("--steps", default="fast",
                        help=f"diffusion models' inference schedule, by name ({listed}; default fast) or a JSON "
                             f"list of betas")


def parse(argv, prog):
    """(arguments, the model folder's config, its Family), checked before TensorFlow is imported."""
    known, _ = make_parser(prog, add_help=False).parse_known_args(argv)
    if known.out:
        writable_file(known.out, "--out", ".wav")
    else:
        writable_folder(known.out_dir, "--out-dir")
    config = load_run_config(known.model_dir)
    family, kind = registry.family_of(config), kind_of(config)
    args, unknown = make_parser(prog, config).parse_known_args(argv)
    others = {_flag(flag.name): other.title for other in map(registry.family, registry.names())
              for flag in other.sampling_flags}
    for word in unknown:
        if word.split("=")[0] in others:
            raise UserError(f"{known.model_dir}: {word.split('=')[0]} is an option of {others[word.split('=')[0]]} "
                            f"models; this is a {family.title} model")
    if unknown:
        make_parser(prog, config).parse_args(argv)  # argparse's own error for the rest
    kind.check_infer_inputs(bool(args.mel), args.model_dir)
    if args.out and not (args.mel and len(args.mel) == 1):
        raise UserError("--out names one file; with several outputs use --out-dir")
    if args.stream:
        kind.require("stream", family, args.model_dir)
        if len(args.mel) > 1:
            raise UserError("--stream vocodes one utterance: give one --mel")
    if args.refit_mel and not (args.front_end or args.mel_rate or args.mel_hop or args.mel_fmax):
        raise UserError("--refit-mel refits mels to the model from the settings they were made with: say them with "
                        "--front-end NAME, or --mel-rate, --mel-hop and --mel-fmax")
    if args.chunk_frames < 1:
        raise UserError(f"--chunk-frames {args.chunk_frames}: give at least 1 frame")
    names = kind.schedule_names(config, family)
    args.steps = parse_steps(args.steps, names) if names else None
    return args, config, family


def main(argv=None, prog=None):
    """tf-diffwave infer --mel ID|FILE.npy|FILE.wav [...] [--model-dir DIR] [--out FILE] [--steps NAME] (vocoders)
    tf-diffwave infer --model-dir DIR --n-samples N [--batch-size B] [--seed S] [--out-dir OUT] (unconditional)"""
    args, config, family = parse(argv, prog)
    options = {flag.name: getattr(args, flag.name) for flag in family.sampling_flags
               if getattr(args, flag.name) is not None}
    for flag in family.sampling_flags:
        if flag.kind == "audio" and flag.name in options:
            options[flag.name] = read_audio(options[flag.name], config["audio"]["sample_rate"])
    import_tensorflow()
    from tf_diffwave.inference.model import load

    model = load(args.model_dir, args.precision)
    say_precision(model)
    apply_model_settings(model.config)
    {"mel": vocode_files, "seed": generate_clips}[model.pipeline.kind.input](model, args, options)


def vocode_files(model, args, options):
    """Vocode every --mel, whole or (--stream) streamed, into <out-dir> or --out."""
    import numpy as np

    mels = [given_mel(spec, model, args) for spec in args.mel]
    if args.stream:
        stream_one(model, args.mel[0], mels[0], args)
        return
    frames = max(len(m) for m in mels)
    silence = model.log_mel.silence
    batch = np.stack([np.pad(m, ((0, frames - len(m)), (0, 0)), constant_values=silence) for m in mels])
    audio = model.vocode(batch, steps=args.steps, seed=args.seed)
    hop = model.config["audio"]["hop_length"]
    for spec, mel, wave in zip(args.mel, mels, audio):
        out = args.out or os.path.join(args.out_dir, output_name(spec, model))
        write_wav(out, wave[: len(mel) * hop], model.sample_rate)
        print(f"wrote {out} ({len(mel) * hop / model.sample_rate:.2f} s)")


def stream_one(model, spec, mel, args):
    """Vocode `mel` by streaming it in chunks of --chunk-frames, writing the WAV as its audio becomes final."""
    import time

    from tf_diffwave.data.audio import WavWriter

    hop, rate = model.config["audio"]["hop_length"], model.sample_rate
    exact = model.exact_lookahead(args.steps)
    lookahead = exact if args.lookahead is None else args.lookahead
    kind = "exact" if lookahead >= exact else f"exact needs {exact}"
    print(f"streaming {args.chunk_frames}-frame chunks; lookahead {lookahead} frames "
          f"({1000 * lookahead * hop / rate:.0f} ms, {kind})", flush=True)
    out = args.out or os.path.join(args.out_dir, output_name(spec, model))
    chunks = (mel[i: i + args.chunk_frames] for i in range(0, len(mel), args.chunk_frames))
    start, first = time.perf_counter(), None
    with WavWriter(out, rate) as wav:
        for audio in model.stream(chunks, steps=args.steps, seed=args.seed, lookahead=args.lookahead):
            wav.write(audio)
            first = first or time.perf_counter() - start
    total = time.perf_counter() - start
    print(f"wrote {out} ({len(mel) * hop / rate:.2f} s): first audio after {first:.2f} s, all after {total:.2f} s")


def generate_clips(model, args, options):
    """Write --n-samples clips of an unconditional model as <out-dir>/seed_<seed>_<model>-<step>.wav, in
    batches."""
    from tf_diffwave.progress import progress_bar

    progbar = progress_bar(args.n_samples, "clip")
    length = model.config["model"]["audio_length"]
    samples = None

    def on_sample(done):  # pipelines that report progress within a batch: a bar over its samples
        nonlocal samples
        samples = samples or progress_bar(length, "sample")
        samples.update(min(int(done), length))

    def on_batch(done):
        nonlocal samples
        samples = None
        progbar.update(done)

    clips = model.generate(args.n_samples, seed=args.seed, steps=args.steps, batch_size=args.batch_size,
                           on_batch=on_batch, on_sample=on_sample, **options)
    for i, clip in enumerate(clips):
        write_wav(os.path.join(args.out_dir, f"seed_{args.seed + i}_{model_tag(model)}.wav"), clip, model.sample_rate)
    print(f"wrote {len(clips)} clip{'s' if len(clips) != 1 else ''} to {args.out_dir}")
