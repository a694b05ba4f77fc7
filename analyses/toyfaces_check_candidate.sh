#!/usr/bin/env bash
# Is a toyfaces training snapshot good enough to ship? Everything tests/test_embedded_model.py and the model
# card's targets would see, without shipping it:
#   1. 20000 samples scored by the embedded classifier and W boundaries of every attribute, as build.sh step 5
#      (the boundaries' validation accuracies: the test's first bar);
#   2. the test's smile edit (seeds 0-47, w + 2 n, constant noise) with those boundaries: raised share, mean
#      change, flips and moves of the others against the test's bounds;
#   3. the model report on 2000 faces (analyses/toyfaces_model_report.py): the card's five targets.
#
#   bash analyses/toyfaces_check_candidate.sh SNAPSHOT.safetensors OUT_DIR
#
# Reruns resume (sample keeps finished chunks). About 10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: toyfaces_check_candidate.sh SNAPSHOT OUT_DIR}
OUT=${2:?usage: toyfaces_check_candidate.sh SNAPSHOT OUT_DIR}
mkdir -p "$OUT"
CLASSIFIER=$(python3 -c "from latentlab import defaults; print(defaults.classifier_spec())")  # the embedded one

latentlab sample --model "$MODEL" --classifier "$CLASSIFIER" --n 20000 --batch 64 --chunk 2000 --out "$OUT/samples"
[ -f "$OUT/boundaries/index.json" ] ||
    latentlab boundary --samples-dir "$OUT/samples" --attr all --space w --ratio 0.05 --out "$OUT/boundaries"

python3 - "$MODEL" "$OUT" "$CLASSIFIER" <<'PY' | tee "$OUT/edit_check.txt"
import json
import sys

from latentlab import load_generator
from latentlab.attributes import load_classifier
from latentlab.attributes.toyfaces import LOGITS
from latentlab.studies.edit_quality import EDIT_BARS, edit_quality

model, out, spec = sys.argv[1:4]
G = load_generator(model)
clf = load_classifier(spec).eval()
index = json.load(open(f"{out}/boundaries/index.json"))["attributes"]
for a, e in index.items():  # the test's bar: 0.9, yaw 0.85
    bar = 0.85 if a == "yaw" else 0.9
    print(f"boundary {a:12s} val acc {e['val_accuracy']:.3f} {'ok' if e['val_accuracy'] >= bar else 'FAIL'}")
# The test's edit: seeds 0-47, w + 2 n on every layer, constant noise; moves over the regressed scores (as the
# training curve takes them: every attribute but the logits and the edited one).
moved = [a for a in clf.names if a not in LOGITS and a != "smile"]
r = edit_quality(G, clf, "smile", alpha=2.0, edit_seeds=range(48), direction=f"{out}/boundaries/smile.npy",
                 moved=moved)
raised_bar, flip_bar, move_bar = (EDIT_BARS[k][1] for k in ("raised", "max_flip", "max_move"))  # the test's bars
print(f"smile raised {r['raised']:.3f} (>= {raised_bar}) mean {r['mean_change']:+.3f} (> 0.03)")
for a, f in r["flips"].items():
    print(f"flip {a:12s} {f:.3f} {'ok' if f <= flip_bar else 'FAIL'}")
for a in moved:
    m = r["moves"][a]
    print(f"move {a:12s} {m:.3f} {'ok' if m < move_bar else 'FAIL'}")
PY

[ -f "$OUT/report/summary.md" ] || python3 analyses/toyfaces_model_report.py --model "$MODEL" --n 2000 --out "$OUT/report"
sed -n '1,40p' "$OUT/report/summary.md"
