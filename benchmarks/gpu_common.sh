# Sourced by gpu_session.sh and gpu_sg3.sh (set OUTDIR first): the environment, timestamps, the machine record and
# the parallel build of our three CUDA extensions.
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0)) s] $*"; }

record_machine() {
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
    $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
    nvcc --version | tail -1; echo "cpus $(nproc)"; date -u
  } >"$OUTDIR/machine.txt" 2>&1
  cat "$OUTDIR/machine.txt"
}

# Starts the builds in the background; wait_our_builds waits and says whether all succeeded (0/1).
start_our_builds() {
  our_build_pids=()
  for op in bias_act upfirdn2d filtered_lrelu; do
    timeout 300 $PY -c "import sys; from latentlab.ops import cuda as c; sys.exit(c.load_extension('$op') is None)" \
      >"$OUTDIR/build_$op.log" 2>&1 &
    our_build_pids+=($!)
  done
}
wait_our_builds() {
  local ok=1
  for p in "${our_build_pids[@]}"; do wait "$p" || ok=0; done
  say "our kernels built: $ok"
}
