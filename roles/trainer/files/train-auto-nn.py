#!/usr/bin/env python3
"""Tune an MLPClassifier on the EEG letter data with a time-bounded random search.

Candidates (train-nn.py's defaults first, then a seeded random sample of a
small grid, without repeats) are scored by stratified, shuffled K-fold cross-
validation on --train. The search stops starting new candidates once the next
one (plus the final refit) is predicted to exceed --max-seconds; at least one
candidate is always evaluated. ConvergenceWarnings (max epochs reached) are
silenced during the search. The best candidate is refitted on all of
--train, scored on --test and saved as nn-tuned.joblib. Prints
`best_params=<json>` and then `accuracy=0.1234` on stdout.
"""
import json
import os
import time

import eegdata

MODEL_FILE = "nn-tuned.joblib"

SPACE = {
    "hidden_layer_sizes": [(50,), (100,), (200,), (100, 50), (200, 100)],
    "activation": ["relu", "tanh"],
    "alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2],
}


def candidates(n_iter, seed):
    """Defaults first, then distinct random grid points; n_iter in total."""
    from sklearn.model_selection import ParameterSampler

    first = {k: eegdata.MLP_DEFAULTS[k] for k in SPACE}
    sample = ParameterSampler(SPACE, n_iter=n_iter, random_state=seed)
    rest = [c for c in sample if c != first]
    return ([first] + rest)[:n_iter]


def main():
    p = eegdata.parser(__doc__.splitlines()[0], MODEL_FILE)
    p.add_argument("--max-seconds", type=float, default=120,
                   help="time budget for search + refit (default: %(default)s)")
    p.add_argument("--n-iter", type=int, default=20,
                   help="maximum number of candidates (default: %(default)s)")
    p.add_argument("--folds", type=int, default=4,
                   help="cross-validation folds (default: %(default)s)")
    p.add_argument("--max-iter", type=int, default=eegdata.MLP_DEFAULTS["max_iter"],
                   help="maximum epochs per fit (default: %(default)s)")
    p.add_argument("--cv-split", choices=("shuffled", "blocked"), default="shuffled",
                   help="shuffled: StratifiedKFold(shuffle=True, seeded); blocked: "
                        "no shuffle, so each fold is a contiguous run of rows within "
                        "every class (less optimistic when neighbouring rows are "
                        "near-duplicates, as in the real EEG files) (default: %(default)s)")
    p.add_argument("--n-jobs", type=int, default=2,
                   help="parallel CV fits (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    args = p.parse_args()
    if args.n_iter < 1:
        p.error("--n-iter must be >= 1")
    if args.folds < 2:
        p.error("--folds must be >= 2")

    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.neural_network import MLPClassifier

    X_train, y_train, X_test, y_test = eegdata.load(args.train, args.test)
    eegdata.log(f"train {X_train.shape}, test {X_test.shape}")

    base = MLPClassifier(max_iter=args.max_iter, random_state=args.seed)
    if args.cv_split == "shuffled":
        cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    else:
        cv = StratifiedKFold(n_splits=args.folds)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    # Worker processes do not inherit the filter on every scikit-learn version;
    # they do inherit the environment (the message can hold no ':').
    quiet = "ignore:Stochastic Optimizer:UserWarning"
    os.environ["PYTHONWARNINGS"] = ",".join(
        w for w in (os.environ.get("PYTHONWARNINGS"), quiet) if w)
    start = time.monotonic()
    best = None  # (cv score, params)
    slowest_candidate = 0.0  # wall seconds of the slowest candidate so far
    slowest_fit = 0.0  # mean single-fit seconds of the slowest candidate so far
    tried = 0
    todo = candidates(args.n_iter, args.seed)
    for params in todo:
        elapsed = time.monotonic() - start
        refit = slowest_fit * args.folds / (args.folds - 1)
        if tried and elapsed + slowest_candidate + refit > args.max_seconds:
            eegdata.log(f"time budget reached after {tried} of {len(todo)} candidates")
            break
        t0 = time.monotonic()
        scores = cross_validate(clone(base).set_params(**params), X_train, y_train,
                                cv=cv, n_jobs=args.n_jobs, error_score="raise")
        wall = time.monotonic() - t0
        slowest_candidate = max(slowest_candidate, wall)
        slowest_fit = max(slowest_fit, scores["fit_time"].mean())
        score = scores["test_score"].mean()
        tried += 1
        eegdata.log(f"[{tried}] cv={score:.4f} {wall:.1f}s {params}")
        if best is None or score > best[0]:
            best = (score, params)

    cv_score, params = best
    model = clone(base).set_params(**params).fit(X_train, y_train)
    if model.n_iter_ >= args.max_iter:
        eegdata.log(f"note: final fit stopped at --max-iter {args.max_iter} before converging")
    accuracy = model.score(X_test, y_test)
    path = eegdata.save_model(model, args.model_dir, MODEL_FILE)
    eegdata.log(f"best cv={cv_score:.4f} of {tried} candidates; total "
                f"{time.monotonic() - start:.1f}s, model saved to {path}")
    shown = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    eegdata.report(["best_params=" + json.dumps(shown, sort_keys=True),
                    eegdata.accuracy_line(accuracy)], args.result)


if __name__ == "__main__":
    eegdata.run(main)
