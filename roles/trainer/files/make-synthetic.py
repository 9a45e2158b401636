#!/usr/bin/env python3
"""Write synthetic EEG letter data (train.csv, test.csv) in the real files' schema.

Standard library only. Columns: `Line`, `# Letter` (0-25), then 160 band-power
features " <channel>/<band>" (32 channels x 5 bands, names with a leading space),
rows sorted by label. Values are positive and band-power-like: a 1/f-style level
per band, a gain per channel, a per-class pattern, a per-row overall gain (which
row L2 normalisation removes) and multiplicative per-value noise. The same class
patterns are used for both files; the rows are drawn independently. Same seed,
same bytes.
"""
import argparse
import math
import os
import random

CHANNELS = ("Cz Fz Fp1 F7 F3 FC1 C3 FC5 FT9 T7 TP9 CP5 CP1 P3 P7 O1 Pz Oz O2 P8 "
            "P4 CP2 CP6 TP10 T8 FT10 FC6 C4 FC2 F4 F8 Fp2").split()
BANDS = ("theta", "alpha", "betaL", "betaH", "gamma")
BAND_LEVEL = {"theta": 20.0, "alpha": 14.0, "betaL": 7.0, "betaH": 4.0, "gamma": 2.0}
CLASSES = 26


def header():
    names = [f" {ch}/{band}" for ch in CHANNELS for band in BANDS]
    return ",".join(["Line", "# Letter"] + names)


def write(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="\n") as fh:
        fh.write(header() + "\n")
        for i, (label, values) in enumerate(rows):
            fh.write(f"{i},{label}," + ",".join(f"{v:.3f}" for v in values) + "\n")
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--rows-per-class", type=int, default=20,
                   help="rows per class in each file (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    p.add_argument("--class-spread", type=float, default=0.12,
                   help="log-scale spread of the per-class patterns; larger is "
                        "easier (default: %(default)s)")
    p.add_argument("--noise", type=float, default=0.35,
                   help="log-scale per-value noise; larger is harder (default: %(default)s)")
    args = p.parse_args()
    if args.rows_per_class < 2:
        p.error("--rows-per-class must be >= 2")

    rng = random.Random(args.seed)
    base = [BAND_LEVEL[b] * g for g in (rng.lognormvariate(0, 0.3) for _ in CHANNELS)
            for b in BANDS]
    pattern = [[math.exp(rng.gauss(0, args.class_spread)) for _ in base]
               for _ in range(CLASSES)]

    def rows():
        for label in range(CLASSES):
            for _ in range(args.rows_per_class):
                gain = rng.lognormvariate(0, 0.5)
                yield label, [max(0.001, b * m * gain * math.exp(rng.gauss(0, args.noise)))
                              for b, m in zip(base, pattern[label])]

    os.makedirs(args.out, exist_ok=True)
    for name in ("train.csv", "test.csv"):
        write(os.path.join(args.out, name), list(rows()))
    print(f"wrote {CLASSES * args.rows_per_class} rows each to "
          f"{os.path.join(args.out, 'train.csv')} and test.csv")


if __name__ == "__main__":
    main()
