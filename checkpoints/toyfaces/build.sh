#!/usr/bin/env bash
# How the embedded toyfaces model was made: every command, in order (see README.md here for the results).
#
#   WORK=/work/toy STEPS=9000 V2_STEPS=8000 V4_STEPS=NNNNN bash checkpoints/toyfaces/build.sh  # everything
#   WORK=/work/toy STEPS=9000 V2_STEPS=8000 V4_STEPS=NNNNN SKIP_TRAINING=1 bash \
#       checkpoints/toyfaces/build.sh  # reuse the runs
#   WORK=/work/toy FROM=5 bash checkpoints/toyfaces/build.sh     # from step 5 on: all that follows the generator
#
# FROM: the first step to run (1, 2, 3, 4, 4b, 4c, 4d, 5, 6, 7, 8, 9; default 1); the steps before it are taken as
# done (their files already shipped). DRY=1 prints the commands of the steps that would run instead of running
# them. SKIP_TRAINING=1 leaves out the training commands of the steps that run (their runs are in $WORK).
#
# WORK holds the large intermediate files (dataset, training run, samples); the shipped files go to
# checkpoints/ in this repository, which installs as latentlab's package data `latentlab.shipped` (the
# registry's shipped entry 'toyfaces' names toyfaces/generator.safetensors there): run it with an editable
# install (`pip install -e .`), so that the later steps read the files the earlier ones wrote here.
# Training ran on a 2-core CPU; STEPS is where the first run (v1) was stopped, V2_STEPS where its fine-tuning (v2,
# step 4c) was, V4_STEPS where the widened v2's run (v4, step 4d, the shipped model) was.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:?set WORK to a folder for the dataset, run and samples}
SAMPLES=${SAMPLES:-20000}  # REPORT_N (default 2000): faces per set in the model report
STEP_ORDER=" 1 2 3 4 4b 4c 4d 5 6 7 8 9 "
FROM=${FROM:-1}
case "$STEP_ORDER" in
  *" $FROM "*) ;;
  *) echo "build.sh: FROM=$FROM is not a step (one of:$STEP_ORDER)" >&2; exit 2 ;;
esac
runs() {  # whether step $1 runs: it is FROM or comes after it
  case "${STEP_ORDER%% "$FROM" *} " in *" $1 "*) return 1 ;; esac
}
training() {  # whether the training commands of step $1 run
  runs "$1" && [ -z "${SKIP_TRAINING:-}" ]
}
run() {  # a command, or with DRY=1 its line (shell-quoted)
  if [ -n "${DRY:-}" ]; then printf '+'; printf ' %q' "$@"; echo; else "$@"; fi
}
# The snapshots shipped, asked for up front when their steps run.
if runs 2 || runs 4; then
  STEPS=${STEPS:?set STEPS to the training step whose snapshot is shipped}
fi
if runs 4c; then
  V2_STEPS=${V2_STEPS:?set V2_STEPS to the fine-tuning step whose snapshot is shipped}
fi
if runs 4d; then
  V4_STEPS=${V4_STEPS:?set V4_STEPS to the v4 training step whose snapshot is shipped}
fi

# 1. The dataset: 30000 procedural faces at 64 px with their true labels.
if training 1; then
  run latentlab toyfaces --n 30000 --seed 0 --resolution 64 --workers 2 --out "$WORK/data"
fi
# 2. The generator: a small StyleGAN2 (128-d z and w, 4 mapping layers, 64 channels at most), our training loop.
if training 2; then
  run latentlab train gan --data "$WORK/data/images" --resolution 64 --steps "$STEPS" --out "$WORK/run" --batch 16 \
      --z-dim 128 --w-dim 128 --map-layers 4 --channel-base 2048 --channel-max 64 --snapshot-every 500 \
      --log-every 50 --gamma 0.0512 --ema-kimg 5 --aug noaug --seed 0 --device cpu
fi
# 3. The attribute classifier, trained on the renders with their true labels (last 10% held out).
if training 3; then
  run latentlab train-classifier --toyfaces "$WORK/data" --out "$WORK/classifier/toyfaces-classifier.safetensors" \
      --epochs 14 --device cpu --threads 1
fi

# Registers the shipped generator's weights hash as 'toyfaces' (the boundaries' model check).
register_toyfaces() {
python3 - <<'PY'
import json
from latentlab import load_generator
from latentlab.models.identity import model_hash
G = load_generator("checkpoints/toyfaces/generator.safetensors")
path = "checkpoints/boundaries/models.json"
models = json.load(open(path))
models["toyfaces"] = {"names": ["toyfaces"], "model_hashes": [model_hash(G)]}
open(path, "w").write(json.dumps(models, indent=2) + "\n")
PY
}

# The floor of the sweep's numbers (step 9): renders against renders, with the same features.
sweep_floor() {
python3 - "$1" <<'PY'
import sys
import numpy as np
from latentlab.metrics.extractors import get_extractor
from latentlab.metrics.fid import fid_from_features
from latentlab.metrics.precision_recall import precision_recall
from latentlab.metrics.sources import dataset_images
ext = get_extractor("toyfaces")
f = np.concatenate([ext(x).numpy() for x in dataset_images(sys.argv[1], 64, max_items=10000, batch_size=256)])
p, r = precision_recall(f[:5000], f[5000:], k=3)
print(f"renders vs renders: precision {p:.3f}, recall {r:.3f}, FID {fid_from_features(f[5000:], f[:5000]):.2f}")
PY
}

# 4. v1: ship G_ema alone and the classifier.
if runs 4; then
  run latentlab convert "$(printf "%s/run/network-snapshot-%06d.safetensors" "$WORK" "$STEPS")" \
      checkpoints/toyfaces/generator.safetensors --networks G_ema --force
  run cp "$WORK/classifier/toyfaces-classifier.safetensors" checkpoints/toyfaces/classifier.safetensors
  run cp "$WORK/classifier/toyfaces-classifier.json" checkpoints/toyfaces/classifier.json
  run register_toyfaces
fi

# 4b. The discriminator, so that `train gan|hsr --model toyfaces` fine-tunes offline (issue 18): the training run's
#     D was not kept, so a new one (`--new-d`) was trained alone against the shipped G_ema (`--d-warmup`: G and
#     G_ema untouched, G_ema's hash unchanged) on the same renders, 1000 steps (16 kimg; 18 min on one thread,
#     loss_D 1.39 -> 0.61, E[sign D(real)] 0.11 -> 0.64), and shipped beside G_ema.
D_STEPS=${D_STEPS:-1000}
if training 4b; then
  run latentlab --threads 1 train gan --model toyfaces --new-d --d-warmup "$D_STEPS" --steps "$D_STEPS" \
      --data "$WORK/data/images" --batch 16 --aug noaug --snapshot-every 250 --log-every 50 --seed 0 --out "$WORK/dwarm"
fi
if runs 4b; then
  run latentlab convert "$(printf '%s/dwarm/network-snapshot-%06d.safetensors' "$WORK" "$D_STEPS")" \
      checkpoints/toyfaces/generator.safetensors --networks G_ema,D --force
fi

# 4c. v2 (issue 21): v1 (G_ema and the D of 4b) fine-tuned on the same renders with the same settings, 2 threads in
#     the background (~1.4 steps/s), and stopped at V2_STEPS (128 kimg more: 272 kimg in all). Its measures stopped
#     improving after ~32 kimg (report/v2/curve: analyses/toyfaces_training_curve.py on the run, 500 faces per
#     snapshot); V2_STEPS is the snapshot with the lowest Frechet distance and correlation difference there
#     (1000 faces each, snapshots 7000-9000). The learning rate is constant, so a run stopped there equals one
#     asked for V2_STEPS steps; rerunning the command resumes. Then G_ema and the fine-tuned D are shipped.
if training 4c; then
  run cp checkpoints/toyfaces/generator.safetensors "$WORK/v1_generator.safetensors"
  run latentlab --threads 2 train gan --model "$WORK/v1_generator.safetensors" --data "$WORK/data/images" \
      --batch 16 --gamma 0.0512 --ema-kimg 5 --aug noaug --steps "$V2_STEPS" --snapshot-every 250 --log-every 50 \
      --seed 1 --out "$WORK/v2"
  run python3 analyses/toyfaces_training_curve.py --run "$WORK/v2" --every 1000 --n 500 \
      --start "$WORK/v1_generator.safetensors" --out checkpoints/toyfaces/report/v2/curve
fi
if runs 4c; then
  run latentlab convert "$(printf '%s/v2/network-snapshot-%06d.safetensors' "$WORK" "$V2_STEPS")" \
      checkpoints/toyfaces/generator.safetensors --networks G_ema,D --force
  run register_toyfaces
fi

# 4d. v4 (issue 21): v2 widened to 128 channels at 4-16 px (`--channel-max 128`: the new channels start at zero
#     weight, so the widened model draws what v2 draws) and fine-tuned with a 4x path-length weight from its first
#     step (a v3 run without it first reached the targets' neighbourhood only after it was added), 2 threads in the
#     background (1.0-1.6 s/step, ~7 h), over three sessions: stopped four times, rerunning the command resumed
#     exactly from the run's training_state.pt each time (CHANGELOG). It was asked for V4_STEPS=20000 steps and
#     shipped at the end; all five targets met there (model card). report/curve: the measures per 2000 steps (500
#     faces; the published curve also has steps 500, 1000, 3000 from earlier passes).
if training 4d; then
  run latentlab convert checkpoints/toyfaces/generator.safetensors "$WORK/v3_start.safetensors" --channel-max 128 \
      --force
  run latentlab --threads 2 train gan --model "$WORK/v3_start.safetensors" --data "$WORK/data/images" --batch 16 \
      --gamma 0.0512 --ema-kimg 5 --aug noaug --pl-weight 8 --steps "$V4_STEPS" --snapshot-every 500 \
      --log-every 50 --seed 4 --out "$WORK/v4"
  run python3 analyses/toyfaces_training_curve.py --run "$WORK/v4" --every 2000 --n 500 --edit smile \
      --start "$WORK/v3_start.safetensors" --out checkpoints/toyfaces/report/curve
  run cp "$WORK/v4/metrics.csv" checkpoints/toyfaces/report/curve/metrics.csv  # the run's losses
fi
if runs 4d; then
  run latentlab convert "$(printf '%s/v4/network-snapshot-%06d.safetensors' "$WORK" "$V4_STEPS")" \
      checkpoints/toyfaces/generator.safetensors --networks G_ema,D --force
  run register_toyfaces
fi

# 5. Boundaries: sample and score, then InterFaceGAN SVMs on the top and bottom 5% per attribute, in W and in Z.
if runs 5; then
  run rm -rf "$WORK/samples"
  run latentlab sample --model toyfaces --n "$SAMPLES" --batch 64 --chunk 2000 --out "$WORK/samples"
  run rm -rf checkpoints/boundaries/toyfaces checkpoints/toyfaces/boundaries_z
  run latentlab boundary --samples-dir "$WORK/samples" --attr all --space w --ratio 0.05 \
      --out checkpoints/boundaries/toyfaces
  run latentlab boundary --samples-dir "$WORK/samples" --attr all --space z --ratio 0.05 \
      --out checkpoints/toyfaces/boundaries_z
fi

# 6. The model report (generated faces vs fresh renders) and the README's demo edit.
if runs 6; then
  run python3 analyses/toyfaces_model_report.py --n "${REPORT_N:-2000}" --out checkpoints/toyfaces/report
  run latentlab edit --attr smile --alpha -2,0,2 --seeds 0-5 --out out/demo --force
  run cp out/demo/grid.png docs/images/demo_smile.png  # the README's image: seeds x alphas, labelled, 2x
fi

# 7. The GH-Feat encoder (issue 15): trained on the training renders (the first 27000; the last 3000 stay out, as
#    for the classifier) with the generator frozen, single-threaded in the background (~1.2-1.5 s/step on the
#    2-core CPU beside other jobs). No VGG16 ImageNet weights offline, so F is the embedded classifier's stages
#    (--feature-net toyfaces: the term is then the projector's toyfaces distance), weighted 0.05 so that it starts
#    level with the pixel loss (~0.1 each). The residual penalty is 1e-5, a fiftieth of the paper's 5e-4: at 5e-4
#    it weighed as much as the pixel loss here (5e-4 x ~60 = 0.03) and held the codes near y_avg. On the 1000
#    held-out renders of step 8 after 2500 steps (PSNR of their mean MSE; correlation of the classifier's yaw on
#    the reconstructions with the renders' true yaw; model card): the paper's weights without F 21.0 dB and 0.43,
#    1e-5 without F 24.2 dB and 0.80, 1e-5 with F (this command) 24.7 dB and 0.96. D starts fresh: the encoder is
#    trained against G_ema alone (a copy of the shipped file without its D), because v2's trained D, the default
#    (`--model toyfaces`), rated every reconstruction so confidently fake that its term swamped the pixel loss
#    (held-out PSNR 18.1 dB against 20.5 dB with a fresh D, same steps; model card). ENC_STEPS is where it was
#    stopped (the learning rate decays with the step alone, so a run stopped there equals one asked for ENC_STEPS
#    steps; rerunning resumes).
ENC_STEPS=${ENC_STEPS:-2500}
if training 7; then
  run latentlab convert checkpoints/toyfaces/generator.safetensors "$WORK/g_ema_only.safetensors" \
      --networks G_ema --force
  run latentlab train encoder --model "$WORK/g_ema_only.safetensors" --data "$WORK/data/images" \
      --max-images 27000 --steps "$ENC_STEPS" --batch 8 --depth 18 --width 16 --fpn-channels 64 \
      --feature-net toyfaces --lambda-feat 0.05 --lambda-reg 1e-5 \
      --decay-every 1000 --snapshot-every 250 --log-every 20 --seed 0 --device cpu --threads 1 --out "$WORK/encoder"
fi
if runs 7; then
  run cp "$WORK/encoder/encoder.safetensors" checkpoints/toyfaces/encoder.safetensors
fi

# 8. Its report: held-out renders (a fresh seed, never seen in training) inverted by the projector, the encoder and
#    the encoder + 100 projector steps; then GH-Feat's level-wise probes on the same renders' features (with all
#    700 training labels, and label-efficiency curves from 25 labels up: ~4 min), and level transfer on their codes
#    and on the generator's own samples.
if runs 8; then
  run latentlab toyfaces --n 1000 --seed 1 --resolution 64 --workers 2 --out "$WORK/heldout"
  run python3 analyses/toyfaces_inversion_report.py --renders "$WORK/heldout" --n 32 --steps 1000 --refine 100 \
      --threads 1 --out checkpoints/toyfaces/report/inversion
  run latentlab features "$WORK"/heldout/images/*.png --out "$WORK/features" --force
  run python3 analyses/encoder_level_probe.py --features "$WORK/features/features.npz" \
      --labels "$WORK/heldout/labels.csv" \
      --targets yaw,nuisance_face_scale,male,smile,age,eyeglasses,skin,background,nuisance_hair_shade \
      --title "toyfaces encoder: linear probes per level (1000 held-out renders)" --transfer \
      --curve 25,50,100,200,400,700 --repeats 20 \
      --out checkpoints/toyfaces/report/level_probe
  run rm -f checkpoints/toyfaces/report/level_probe/*.pdf  # the card shows the PNGs; the PDFs are not shipped
fi

# 9. Truncation sweeps (issue 17): learned clusters for the embedded model (`train clusters`, the code classifier,
#    k = 8 per level, 5000 steps: ~5 min single-threaded), then FID and precision/recall of W truncation, fitted
#    clusters (k = 8, fitted once on 10000 codes) and the learned clusters at 8 psi from 0.3 to 1.0: 5000 generated
#    images per point against the training renders (all 30000 for FID, the first 5000 for precision/recall), toyfaces
#    classifier features, the same seeded codes at every point; ~32 min on one thread. Rerunning resumes.
if training 9; then
  run latentlab train clusters --model toyfaces --steps 5000 --k 8 --seed 0 --device cpu --threads 1 \
      --log-every 50 --out "$WORK/clusters"
fi
if runs 9; then
  run latentlab sweep --model toyfaces --data "$WORK/data/images" --curve w --curve clusters:k=8 \
      --curve "clusters:$WORK/clusters/clusters.npz" --psis 0.3:1.0:8 --metrics fid5k_full,pr5k3 --seed 0 \
      --device cpu --threads 1 --out "$WORK/sweep"
  run mkdir -p checkpoints/toyfaces/report/sweep
  run cp "$WORK"/sweep/{sweep.csv,sweep.json,sweep.png,precision_recall.png,precision_fid.png} \
      checkpoints/toyfaces/report/sweep/
  # The floor of these numbers (README): the first 5000 renders against the next 5000, the same features.
  run sweep_floor "$WORK/data/images"
fi
