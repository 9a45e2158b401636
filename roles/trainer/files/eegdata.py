"""Shared code for the EEG letter trainer scripts.

The CSV files have a `Line` column (row index, not a feature), a `# Letter`
label column (0-25) and then float band-power features whose names start
with a space (" Cz/theta", ...). Features are taken by position: every
column except `Line` and the label. Each row is scaled to unit L2 norm.
"""
import argparse
import os
import sys
import tempfile

LABEL = "# Letter"
INDEX = "Line"

# Defaults of the plain MLP (train-nn.py); train-auto-nn.py tries them first.
MLP_DEFAULTS = {
    "hidden_layer_sizes": (100,),
    "activation": "relu",
    "alpha": 1e-4,
    "learning_rate_init": 0.01,
    "max_iter": 500,
}


class DataError(Exception):
    """The input files are missing or do not have the expected layout."""


def read(path):
    """Read one CSV file; return (features DataFrame, label array)."""
    import pandas as pd

    if not os.path.isfile(path):
        where = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
        raise DataError(f"{path}: file not found{where}")
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if LABEL not in df.columns:
        raise DataError(f"{path}: no label column {LABEL!r}")
    if len(df) == 0:
        raise DataError(f"{path}: no data rows")
    y = df[LABEL].to_numpy()
    features = df.drop(columns=[c for c in (INDEX, LABEL) if c in df.columns])
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns")
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DataError(f"{path}: non-numeric feature column(s): {bad[:5]}")
    if features.isna().any().any():
        raise DataError(f"{path}: missing values in feature columns")
    return features, y


def load(train_path, test_path):
    """Return X_train, y_train, X_test, y_test with rows scaled to unit L2 norm."""
    from sklearn.preprocessing import normalize

    f_train, y_train = read(train_path)
    f_test, y_test = read(test_path)
    if f_train.shape[1] != f_test.shape[1]:
        raise DataError(
            f"{test_path}: {f_test.shape[1]} feature columns, "
            f"but {train_path} has {f_train.shape[1]}"
        )
    X_train = normalize(f_train.to_numpy(dtype=float), norm="l2")
    X_test = normalize(f_test.to_numpy(dtype=float), norm="l2")
    return X_train, y_train, X_test, y_test


def parser(description, model_file):
    """Argument parser with the options every trainer script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--train", default="train.csv", help="training CSV (default: %(default)s)")
    p.add_argument("--test", default="test.csv", help="test CSV (default: %(default)s)")
    p.add_argument("--model-dir", default=".",
                   help=f"directory for {model_file} (default: current directory)")
    p.add_argument("--result", help="also write the result line(s) to this file")
    return p


def log(msg):
    """Human-readable progress goes to stderr; stdout is for result lines.

    One write per line: print() writes the text and its newline apart, and a
    result line on stdout could land between them in the container's output.
    """
    sys.stderr.write(f"{msg}\n")
    sys.stderr.flush()


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_model(model, model_dir, filename):
    """Write the model with joblib (atomically); return its path."""
    import joblib

    path = os.path.join(model_dir, filename)
    _atomic_write(path, lambda tmp: joblib.dump(model, tmp))
    return path


def report(lines, result_path=None):
    """Print result lines (`key=value`) on stdout and optionally to a file."""
    text = "".join(line + "\n" for line in lines)
    sys.stdout.write(text)
    sys.stdout.flush()
    if result_path:
        def write(tmp):
            with open(tmp, "w") as fh:
                fh.write(text)
        _atomic_write(result_path, write)


def accuracy_line(accuracy):
    return f"accuracy={accuracy:.4f}"


def run(main):
    """Run a script's main(); turn DataError into a one-line error and exit 2."""
    try:
        main()
    except DataError as exc:
        log(f"error: {exc}")
        sys.exit(2)
