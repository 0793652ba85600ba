"""scikit-learn peer of docupod's intent classifier, for the models benchmark.

Run from the repository root (the module path is relative to it; bench/ and bench/models/ need no __init__.py,
Python 3 treats them as namespace packages):

    gunicorn -w 2 -b 127.0.0.1:8901 bench.models.sklearn_app:app

or from anywhere with --chdir:

    gunicorn -w 2 -b 127.0.0.1:8901 --chdir bench/models sklearn_app:app

Debian packages: python3-sklearn python3-flask gunicorn.

Like the original "seed" project it trains at import time, so every gunicorn worker trains its own copy on start
(a second or so) and prints the held-out accuracy to stderr. Environment:

    INTENTS_CSV      the data set (default: deploy/models/intents.csv, found relative to this file)
    INTENTS_TEST_FRACTION, INTENTS_SEED   the split (defaults 0.2 and 42, as `docupod models train-intent`)

The split is a port of src/roles/models/intent/split.ts (mulberry32 PRNG, labels in sorted order, Fisher-Yates
shuffle per label, floor(n*fraction + 0.5) test rows per label, at least one training row), so both classifiers are
scored on exactly the same held-out rows. Change the two together.

API: POST /predict {"text": "..."} -> {"intent": "..."}; GET /healthz -> {"status": "ok"}.
"""

import csv
import math
import os
import sys
import time

from flask import Flask, jsonify, request
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CSV = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "models", "intents.csv"))


def mulberry32(seed):
    """The same 32-bit generator as split.ts; Math.imul and >>> become masks to 32 bits."""
    state = seed & 0xFFFFFFFF

    def imul(a, b):
        return (a * b) & 0xFFFFFFFF

    def next_float():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return next_float


def stratified_split(rows, test_fraction, seed):
    by_label = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rand = mulberry32(seed)
    train, test = [], []
    for label in sorted(by_label):  # ASCII labels: same order as JS's default string comparison
        group = list(by_label[label])
        for i in range(len(group) - 1, 0, -1):
            j = math.floor(rand() * (i + 1))
            group[i], group[j] = group[j], group[i]
        n_test = min(math.floor(len(group) * test_fraction + 0.5), len(group) - 1)
        test.extend(group[:n_test])
        train.extend(group[n_test:])
    return train, test


def load_rows(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"text", "intent"} - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path}: missing column(s) {sorted(missing)}")
        return [(r["text"].strip(), r["intent"].strip()) for r in reader if r["text"].strip() and r["intent"].strip()]


def train():
    path = os.environ.get("INTENTS_CSV", DEFAULT_CSV)
    fraction = float(os.environ.get("INTENTS_TEST_FRACTION", "0.2"))
    seed = int(os.environ.get("INTENTS_SEED", "42"))
    rows = load_rows(path)
    train_rows, test_rows = stratified_split(rows, fraction, seed)
    pipeline = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    started = time.perf_counter()
    pipeline.fit([t for t, _ in train_rows], [i for _, i in train_rows])
    took = time.perf_counter() - started
    if test_rows:
        accuracy = pipeline.score([t for t, _ in test_rows], [i for _, i in test_rows])
        print(f"sklearn_app: held-out accuracy {accuracy:.4f} (n_test={len(test_rows)}, n_train={len(train_rows)}, "
              f"seed={seed}, fit {took * 1000:.0f} ms)", file=sys.stderr, flush=True)
    return pipeline


model = train()
app = Flask(__name__)


@app.post("/predict")
def predict():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return jsonify({"error": 'expected a JSON body {"text": "..."}'}), 400
    return jsonify({"intent": str(model.predict([body["text"]])[0])})


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
