#!/usr/bin/env bash
# Everything a lent GPU is for, in one call (device time is scarce): compile every CUDA extension in parallel (ours
# and NVIDIA's plugins from the two checkouts), run the GPU tests, then the side-by-side benchmarks on the GPU.
#
#   benchmarks/gpu_session.sh STYLEGAN2_ADA_CHECKOUT STYLEGAN3_CHECKOUT [OUTDIR]
#
# Logs and JSON lines go to OUTDIR (default $OUT, else ./gpu-out); the last lines printed are the summary.
set -u
SG2=$(realpath "$1"); SG3=$(realpath "$2"); OUTDIR=${3:-${OUT:-gpu-out}}
source "$(dirname "$0")/gpu_common.sh"
export LATENTLAB_SG2ADA=$SG2
record_machine
$PY -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUTDIR/install.log" 2>&1 || say "pip install -e . failed (install.log); PYTHONPATH only"

# 1. Builds, all at once.
start_our_builds
timeout 300 $PY benchmarks/build_official_ops.py "$SG2" >"$OUTDIR/build_sg2.log" 2>&1 &
sg2_pid=$!
timeout 400 $PY benchmarks/build_official_ops.py "$SG3" >"$OUTDIR/build_sg3.log" 2>&1 &
sg3_pid=$!
wait_our_builds
wait "$sg2_pid" || say "NVIDIA's stylegan2-ada plugins FAILED to build: their rows below time their reference fallback"
tail -n 3 "$OUTDIR"/build_*.log

# 2. GPU tests: our kernels against the reference ops, and one training step against NVIDIA's on the GPU.
timeout 240 $PY -m pytest -q -p no:cacheprovider -rs -k "not host" tests/test_ops_cuda.py tests/test_filtered_lrelu.py \
  tests/test_structure_helpers.py tests/test_training_step_official.py >"$OUTDIR/pytest.log" 2>&1
say "pytest exit $?"; tail -n 25 "$OUTDIR/pytest.log"

# 3. Side by side with NVIDIA's code on the same weights.
J="$OUTDIR/bench.jsonl"
timeout 90 $PY benchmarks/generator_throughput.py --device cuda --config res256 --batch 16 --iters 20 --warmup 3 \
  --official "$SG2" --json "$J" 2>&1 | grep -v Warning | tail -n 6
for cfg in toy64 res256; do
  timeout 100 $PY benchmarks/training_throughput.py --device cuda --config "$cfg" --batch 16 --rows side-by-side \
    --iters 16 --rounds 2 --official "$SG2" --json "$J" 2>&1 | grep -v Warning | tail -n 3
done
wait "$sg3_pid" && say "stylegan3 plugins built" || say "stylegan3 plugins FAILED"; tail -n 3 "$OUTDIR/build_sg3.log"
timeout 90 $PY benchmarks/generator_throughput.py --device cuda --config sg3t-256 --batch 16 --iters 20 --warmup 3 \
  --official "$SG3" --json "$J" 2>&1 | grep -v Warning | tail -n 6
# 4. StyleGAN3's filtered_lrelu call by call (ours vs NVIDIA's plugin, errors against float64), and the generator's
#    paths against a float64 evaluation with a profile.
timeout 120 $PY benchmarks/filtered_lrelu_kernel.py --config sg3t-256 --batch 8 --device cuda --official "$SG3" \
  >"$OUTDIR/filtered_lrelu.log" 2>&1; tail -n 20 "$OUTDIR/filtered_lrelu.log"
timeout 90 $PY benchmarks/sg3_accuracy_profile.py --config sg3t-256 --batch 8 --device cuda 2>&1 | grep -v "Warn\|USDT\|ERROR:" \
  | tail -n 18
# The device tool brings back at most 8 files: the logs travel as one archive beside bench.jsonl.
(cd "$OUTDIR" && tar -czf logs.tar.gz --remove-files machine.txt ./*.log)
say "done (logs in $OUTDIR/logs.tar.gz)"
