#!/usr/bin/env python3
"""Train a multi-layer perceptron (MLPClassifier) on the EEG letter data.

Fits on --train, scores on --test, saves nn.joblib in --model-dir and prints
one line `accuracy=0.1234` on stdout (progress goes to stderr). The random
seed is fixed, so the same data and library versions give the same result.
"""
import time

import eegdata

MODEL_FILE = "nn.joblib"


def main():
    p = eegdata.parser(__doc__.splitlines()[0], MODEL_FILE)
    d = eegdata.MLP_DEFAULTS
    p.add_argument("--hidden", default=",".join(map(str, d["hidden_layer_sizes"])),
                   help="hidden layer sizes, comma-separated (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=d["alpha"],
                   help="L2 penalty (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=d["learning_rate_init"],
                   help="initial learning rate (default: %(default)s)")
    p.add_argument("--max-iter", type=int, default=d["max_iter"],
                   help="maximum epochs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    args = p.parse_args()
    try:
        hidden = tuple(int(n) for n in args.hidden.split(",") if n.strip())
    except ValueError:
        p.error(f"--hidden: expected comma-separated integers, got {args.hidden!r}")
    if not hidden or min(hidden) < 1:
        p.error("--hidden: need at least one layer of size >= 1")

    from sklearn.neural_network import MLPClassifier

    X_train, y_train, X_test, y_test = eegdata.load(args.train, args.test)
    eegdata.log(f"train {X_train.shape}, test {X_test.shape}")
    model = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation=d["activation"],
        alpha=args.alpha,
        learning_rate_init=args.learning_rate,
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    start = time.monotonic()
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    path = eegdata.save_model(model, args.model_dir, MODEL_FILE)
    eegdata.log(f"MLP {hidden} fitted in {time.monotonic() - start:.2f}s "
                f"({model.n_iter_} epochs), model saved to {path}")
    eegdata.report([eegdata.accuracy_line(accuracy)], args.result)


if __name__ == "__main__":
    eegdata.run(main)
