#!/usr/bin/env bash
# The StyleGAN3 part of gpu_session.sh alone, for a short device call (about 3 min on an H200): build our kernels
# and NVIDIA's stylegan3 plugins in parallel, run the GPU tests of the kernels, then time the sg3t-256 generator,
# replay its filtered_lrelu calls one by one against NVIDIA's plugin, check accuracy against float64, and run
# compute-sanitizer's racecheck and memcheck on small filtered_lrelu calls.
#
#   benchmarks/gpu_sg3.sh STYLEGAN3_CHECKOUT [OUTDIR]
set -u
SG3=$(realpath "$1"); OUTDIR=${2:-${OUT:-gpu-out}}
source "$(dirname "$0")/gpu_common.sh"
record_machine
start_our_builds
timeout 400 $PY benchmarks/build_official_ops.py "$SG3" >"$OUTDIR/build_sg3.log" 2>&1 &
sg3_pid=$!
wait_our_builds; tail -n 3 "$OUTDIR/build_filtered_lrelu.log"
timeout 200 $PY -m pytest -q -p no:cacheprovider -x -k "not host" tests/test_filtered_lrelu.py tests/test_ops_cuda.py \
  >"$OUTDIR/pytest.log" 2>&1
say "pytest exit $?"; tail -n 6 "$OUTDIR/pytest.log"
wait "$sg3_pid" && say "stylegan3 plugins built" || say "stylegan3 plugins FAILED"; tail -n 2 "$OUTDIR/build_sg3.log"
timeout 90 $PY benchmarks/generator_throughput.py --device cuda --config sg3t-256 --batch 16 --iters 20 --warmup 3 \
  --official "$SG3" --json "$OUTDIR/bench.jsonl" 2>&1 | grep -v Warning | tail -n 6
timeout 120 $PY benchmarks/filtered_lrelu_kernel.py --config sg3t-256 --batch 8 --device cuda --iters 20 \
  --official "$SG3" >"$OUTDIR/filtered_lrelu.log" 2>&1
say "replay exit $?"; grep -v "Warn\|warn\|pkg_resources\|Setting up" "$OUTDIR/filtered_lrelu.log" | tail -n 18
timeout 90 $PY benchmarks/sg3_accuracy_profile.py --config sg3t-256 --batch 8 --device cuda >"$OUTDIR/accuracy.log" 2>&1
say "accuracy exit $?"; grep "max |y - y64|" "$OUTDIR/accuracy.log"
CS=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
for tool in racecheck memcheck; do  # shared-memory races and out-of-bounds accesses of our kernels
  timeout 100 "$CS" --tool "$tool" $PY benchmarks/sanitize_filtered_lrelu.py 2>&1 | grep "SUMMARY\|done\|Error"
done
say done
