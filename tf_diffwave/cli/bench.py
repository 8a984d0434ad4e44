"""tf-diffwave bench (also python -m tf_diffwave.bench): speed and memory tables on this machine."""

import argparse
import tempfile

from tf_diffwave.shipped import shipped_path
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave bench [--race-only] [--peers] [...]: the race first, then the tables, in Markdown."""
    parser = argparse.ArgumentParser(prog=prog, description="Benchmark vocoding and training speed on this machine: "
                                                            "the race against the other implementations first, then "
                                                            "the tables.")
    parser.add_argument("--config", default=shipped_path("configs/ljspeech.json"), help="the vocoder config")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after the warm-up (best is shown)")
    parser.add_argument("--long-seconds", type=float, default=60.0, help="length of the long input (0: skip)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--micro-batches", type=int, default=4, help="batch 16 in this many sequential parts")
    parser.add_argument("--sc09-config", default=shipped_path("configs/sc09.json"),
                        help="unconditional model for the generation table ('' to skip)")
    parser.add_argument("--sashimi-config", default=shipped_path("configs/sc09_sashimi_small.json"),
                        help="SaShiMi config for the training-step table ('' to skip)")
    parser.add_argument("--skip-vocoder", action="store_true", help="only the SC09, S4 and SaShiMi tables")
    parser.add_argument("--converted-rounds", type=int, default=3,
                        help="rounds of the converted-lmnt against native BASE comparison (0: skip)")
    parser.add_argument("--prior-rounds", type=int, default=5,
                        help="rounds of the standard against PriorGrad's prior, taken in turns (0: skip)")
    parser.add_argument("--wavegrad-config", default=shipped_path("configs/wavegrad_ljspeech.json"),
                        help="WaveGrad config for the WaveGrad table ('' to skip)")
    parser.add_argument("--fregrad-config", default=shipped_path("configs/fregrad_allison_16k.json"),
                        help="FreGrad config for its race and streaming rows (default: the bundled vocoder's; "
                             "configs/fregrad_ljspeech.json is the published size; '' to skip)")
    parser.add_argument("--ar-config", default=shipped_path("configs/sc09_ar_sashimi.json"),
                        help="autoregressive SaShiMi config for its table ('' to skip)")
    parser.add_argument("--peers", action="store_true",
                        help="add lmnt-com/diffwave and lmnt-com/wavegrad (PyTorch), if installed, to the race")
    parser.add_argument("--race-rounds", type=int, default=5, help="rounds of the race (0: skip it)")
    parser.add_argument("--race-only", action="store_true", help="only the race")
    parser.add_argument("--skip-quality", action="store_true",
                        help="skip the quality of the reduced-precision paths on the bundled model")
    parser.add_argument("--stream-seconds", type=float, default=10.0,
                        help="utterance length of the streaming table (0: skip it and the lookahead table)")
    parser.add_argument("--stream-only", action="store_true", help="only the streaming and lookahead tables")
    args = parser.parse_args(argv)
    import_tensorflow()
    from tf_diffwave.bench import tables
    from tf_diffwave.bench.race import race

    def show(table):
        print(f"\n{table.markdown()}\n", flush=True)

    if args.race_rounds and not args.stream_only:
        with tempfile.TemporaryDirectory() as folder:
            show(race(args.config, args.wavegrad_config, args.peers, args.race_rounds, folder, args.fregrad_config))
    if args.race_only:
        return
    if args.stream_seconds:
        show(tables.streaming_table([path for path in (args.config, args.wavegrad_config, args.fregrad_config) if path],
                                    args.stream_seconds, args.repeats + 1))
        show(tables.lookahead_table())
    if args.stream_only:
        return
    if not args.skip_quality:
        with tempfile.TemporaryDirectory() as folder:
            show(tables.precision_quality_table(folder))
    if not args.skip_vocoder:
        if args.long_seconds:
            show(tables.long_input_table(args.config, args.long_seconds))
        show(tables.vocoder_table(args.config, args.repeats, args.micro_batches, not args.skip_training))
        if not args.skip_training:
            show(tables.training_options_table(args.config, args.micro_batches))
    if args.sc09_config:
        show(tables.sc09_table(args.sc09_config, args.repeats))
    show(tables.s4_table())
    if args.sashimi_config:
        show(tables.sashimi_training_table(args.sashimi_config, args.repeats))
    if args.converted_rounds:
        show(tables.converted_table(args.converted_rounds, args.repeats))
    if args.prior_rounds:
        show(tables.prior_table(args.config, args.prior_rounds, args.repeats))
    if args.wavegrad_config:
        show(tables.wavegrad_table(args.wavegrad_config, args.repeats, args.micro_batches))
    if args.ar_config:
        show(tables.autoregressive_table(args.ar_config, args.repeats))
