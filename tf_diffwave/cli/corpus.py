"""tf-diffwave corpus asterisk: an LJSpeech-layout corpus of real recorded speech from Debian's Asterisk prompt
packages (data/asterisk.py)."""

import argparse

from tf_diffwave.data.asterisk import NATIVE_RATE, SOUNDS, VOICES, build_corpus
from tf_diffwave.progress import PlainProgress


def main(argv=None, prog=None):
    """tf-diffwave corpus asterisk --out-dir DIR [--language en] [--deb FILE] [--sample-rate HZ] [--trim-db DB]"""
    parser = argparse.ArgumentParser(prog=prog, description="Build a corpus (wavs/, metadata.csv, LICENSE.md) from "
                                                            "installable recordings.")
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    asterisk = sources.add_parser(
        "asterisk", help="Debian's Asterisk prompts: one studio voice per language, G.722 at 16 kHz",
        description="The prompts of one asterisk-core-sounds-<language>-g722 package (apt-get install it, or give "
                    "its .deb file), decoded with PyAV (pip install av), trimmed and written as 16-bit WAVs.")
    asterisk.add_argument("--out-dir", required=True, help="the corpus folder to write (must not exist)")
    asterisk.add_argument("--language", default="en", choices=list(VOICES),
                          help="en (Allison Smith, the default), es (the same voice in Spanish), fr (June "
                               "Wallack), it (Carlo Flora), ru (Maxim Topal)")
    asterisk.add_argument("--deb", help="read the package file (apt-get download asterisk-core-sounds-<language>-"
                                        "g722) instead of the installed package")
    asterisk.add_argument("--sounds-dir", default=SOUNDS, help=f"where the package installed them (default {SOUNDS})")
    asterisk.add_argument("--sample-rate", type=int, default=NATIVE_RATE,
                          help=f"resample to this rate (default {NATIVE_RATE}, the recordings' own)")
    asterisk.add_argument("--trim-db", type=float, default=40.0,
                          help="trim leading and trailing audio this many dB below the loudest 20 ms (default 40)")
    args = parser.parse_args(argv)
    bar = None

    def on_prompt(done, total):
        nonlocal bar
        bar = bar or PlainProgress(total, "prompt")  # plain lines: the command imports no TensorFlow
        bar.update(done)

    made = build_corpus(args.language, args.out_dir, args.sample_rate, args.trim_db, args.deb, args.sounds_dir,
                        on_prompt=on_prompt)
    unreadable = f", {made['unreadable']} unreadable" if made["unreadable"] else ""
    print(f"wrote {args.out_dir}: {made['prompts']} prompts, {made['seconds'] / 60:.1f} minutes at "
          f"{args.sample_rate} Hz ({made['skipped']} silence and tone prompts left out{unreadable}); licence in "
          f"LICENSE.md")
