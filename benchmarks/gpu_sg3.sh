#!/usr/bin/env bash
# The StyleGAN3 part of gpu_session.sh alone, for a short device call (about 160 s on an H200): build our kernels
# and NVIDIA's stylegan3 plugins in parallel, run the GPU tests of the kernels, then time the sg3t-256 generator,
# replay its filtered_lrelu calls one by one against NVIDIA's plugin, and check accuracy against float64.
#
#   benchmarks/gpu_sg3.sh STYLEGAN3_CHECKOUT [OUTDIR]
set -u
SG3=$(realpath "$1"); O=${2:-${OUT:-gpu-out}}
mkdir -p "$O"
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0)) s] $*"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
pids=()
for op in filtered_lrelu bias_act upfirdn2d; do
  timeout 300 $PY -c "import sys; from latentlab.ops import cuda as c; sys.exit(c.load_extension('$op') is None)" \
    >"$O/build_$op.log" 2>&1 &
  pids+=($!)
done
timeout 400 $PY benchmarks/build_official_ops.py "$SG3" >"$O/build_sg3.log" 2>&1 &
sg3_pid=$!
for p in "${pids[@]}"; do wait "$p" || say "a build of ours FAILED"; done
say "our kernels built"; tail -n 3 "$O/build_filtered_lrelu.log"
timeout 200 $PY -m pytest -q -p no:cacheprovider -x -k "not host" tests/test_filtered_lrelu.py tests/test_ops_cuda.py \
  >"$O/pytest.log" 2>&1
say "pytest exit $?"; tail -n 6 "$O/pytest.log"
wait "$sg3_pid" && say "stylegan3 plugins built" || say "stylegan3 plugins FAILED"; tail -n 2 "$O/build_sg3.log"
timeout 90 $PY benchmarks/generator_throughput.py --device cuda --config sg3t-256 --batch 16 --iters 20 --warmup 3 \
  --official "$SG3" --json "$O/bench.jsonl" 2>&1 | grep -v Warning | tail -n 6
timeout 120 $PY benchmarks/filtered_lrelu_kernel.py --config sg3t-256 --batch 8 --device cuda --iters 20 \
  --official "$SG3" >"$O/filtered_lrelu.log" 2>&1
say "replay exit $?"; grep -v "Warn\|warn\|pkg_resources\|Setting up" "$O/filtered_lrelu.log" | tail -n 18
timeout 90 $PY benchmarks/sg3_accuracy_profile.py --config sg3t-256 --batch 8 --device cuda >"$O/accuracy.log" 2>&1
say "accuracy exit $?"; grep "max |y - y64|" "$O/accuracy.log"
say done
