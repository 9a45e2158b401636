#!/usr/bin/env python3
"""Train a Linear Discriminant Analysis model on the EEG letter data.

Fits on --train, scores on --test, saves lda.joblib in --model-dir and prints
one line `accuracy=0.1234` on stdout (progress goes to stderr).
"""
import time

import eegdata

MODEL_FILE = "lda.joblib"


def main():
    args = eegdata.parser(__doc__.splitlines()[0], MODEL_FILE).parse_args()
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X_train, y_train, X_test, y_test = eegdata.load(args.train, args.test)
    eegdata.log(f"train {X_train.shape}, test {X_test.shape}")
    start = time.monotonic()
    model = LinearDiscriminantAnalysis().fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    path = eegdata.save_model(model, args.model_dir, MODEL_FILE)
    eegdata.log(f"LDA fitted in {time.monotonic() - start:.2f}s, model saved to {path}")
    eegdata.report([eegdata.accuracy_line(accuracy)], args.result)


if __name__ == "__main__":
    eegdata.run(main)
