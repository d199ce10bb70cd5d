"""``kspikese data``: build the default corpus (a no-op when it is built) and print a summary."""

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--out", default="data", help="data root; the corpus goes to OUT/default (default: data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    parser.add_argument("--source", default=None, metavar="DIR",
                        help="folder that already holds the asterisk sound trees (e.g. "
                             "/usr/share/asterisk/sounds): skips apt-get download")
    parser.add_argument("--no-megaglest", action="store_true",
                        help="leave out the megaglest-data noise (rain, wind, nature; a 242 MB download)")
    parser.add_argument("--music", action="store_true",
                        help="also build OUT/music: music-on-hold noise (asterisk-moh-opsound-g722, "
                             "an 8 MB download) for dynamic mixing's extra_noise, and the test "
                             "utterances mixed with music (kspikese.data.music)")
    parser.add_argument("--music-source", default=None, metavar="DIR",
                        help="folder that already holds the music-on-hold tracks (<track>.g722): "
                             "skips apt-get download")
    parser.add_argument("--verify", action="store_true", help="re-check every file's sha256 afterwards")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def summary_text(manifest, seconds=None):
    """The human summary of a built corpus: minutes per split, speakers, noise types, SNRs."""
    s = manifest["summary"]
    lines = [f"corpus: {'SYNTHETIC ' if manifest.get('synthetic') else ''}kspikese default corpus, "
             f"seed {manifest['config']['seed']}, 16 kHz"]
    for split, d in s["splits"].items():
        lines.append(f"  {split:5s}: {d['minutes']:6.1f} min of speech, {d['utterances']:4d} utterances, "
                     f"speakers {', '.join(d['speakers'])}")
    if s.get("dropped_short_prompts"):
        lines.append(f"  dropped prompts < {manifest['config']['min_prompt_s']} s: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(s["dropped_short_prompts"].items())))
    for recipe, types in s["noise_types"].items():
        lines.append(f"  {recipe}: noise {', '.join(types)}; SNR {s['snrs_db'][recipe]} dB")
    built = seconds if seconds is not None else s.get("build_seconds")
    if built is not None:
        lines.append(f"  build time: {built:.1f} s")
    return "\n".join(lines)


def run(args):
    from kspikese.data.default import ensure_default_corpus, verify

    t0 = time.time()
    root = Path(args.out)
    out = ensure_default_corpus(root, seed=args.seed, progress=not args.quiet, source=args.source,
                                megaglest=not args.no_megaglest)
    manifest = json.loads((out / "manifest.json").read_text())
    elapsed = time.time() - t0
    print(summary_text(manifest))
    if elapsed < manifest["summary"].get("build_seconds", 0):
        print(f"  (already built: this run took {elapsed:.1f} s)")
    print(f"  manifest: {out / 'manifest.json'}")
    if args.music:
        from kspikese.data import music

        print(music.summary_text(music.ensure_music(root, out, args.music_source,
                                                    progress=not args.quiet)))
    if args.verify:
        bad = verify(out)
        print(f"  verify: {'all checksums match' if not bad else f'{len(bad)} files differ: {bad[:5]}'}")
        return 1 if bad else 0
    return 0
