#!/usr/bin/env bash
# One prepared GPU check for sharesearch: run from the repository root on a machine with one CUDA GPU.
#
#   WHEELS=/path/to/wheels OUT=./gpu_out bash benchmarks/gpu_check.sh
#
# (a) installs Optuna and plotly (and whatever else is in $WHEELS: sqlalchemy, alembic, colorlog, Mako,
#     greenlet, typing_extensions, narwhals, packaging, pytest, pluggy, iniconfig, hypothesis, sortedcontainers,
#     attrs, networkx, ...) from the wheels folder into /tmp/site -- nothing is fetched from the network;
#     reports which imports are present / missing before and after;
# (b) runs `python3 -m pytest -m cuda -q` (populations equal separate runs on the GPU, a search's default
#     companions), then issue 11's GPU figures: 16 candidates as one population against one at a time and the
#     population-size sweep (bench_population.py --candidates --sweep), PCGrad and GradNorm against equal
#     weighting (bench_train.py --only weighting); with FULL=1 also bench_gpu.py and
#     `run_all.py --device cuda --quick` (their figures are in RESULTS.md already);
# (c) writes every output to $OUT (default ./gpu_out) as files;
# (d) each step has its own `timeout`, in order of importance (a step cut short keeps what it printed); the whole
#     script stays under ~8 minutes without FULL=1 (under ~12.5 with it: two calls on a 10-minute limit).
# Exit status: 0 when every step passed, 1 when a step failed, 2 when the set-up itself failed.
set -u
WHEELS=${WHEELS:-.whl}
OUT=${OUT:-./gpu_out}
SITE=${SITE:-/tmp/site}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }
status=0
T0=$(date +%s)

say "== gpu_check $(date -u +%FT%TZ) in $PWD; WHEELS=$WHEELS OUT=$OUT"
(nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 && head -15 "$OUT/nvidia-smi.txt" >> "$LOG") || say "nvidia-smi: not available"

check_imports() {  # $1: label
  python3 - "$1" <<'PY' 2>&1 | tee -a "$LOG"
import importlib, sys
# sharesearch.verdict imports pandas and scipy at module level (search imports verdict): they are needed
need = ["torch", "numpy", "optuna", "plotly", "networkx", "yaml", "tqdm", "sqlalchemy", "pandas", "scipy",
        "pytest", "hypothesis"]
optional = ["pyarrow"]  # only Parquet data files
def ver(m):
    try:
        return getattr(importlib.import_module(m), "__version__", "?")
    except Exception as e:
        return None
missing = [m for m in need if ver(m) is None]
print(f"[{sys.argv[1]}] present: " + ", ".join(f"{m} {ver(m)}" for m in need + optional if ver(m) is not None))
print(f"[{sys.argv[1]}] missing (needed): {missing or 'none'}")
print(f"[{sys.argv[1]}] missing (optional: pyarrow, Parquet tests only): "
      f"{[m for m in optional if ver(m) is None] or 'none'}")
try:
    import torch
    print(f"[{sys.argv[1]}] torch {torch.__version__} cuda={torch.cuda.is_available()} "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}")
except Exception as e:
    print(f"[{sys.argv[1]}] torch import failed: {e}")
sys.exit(1 if missing else 0)
PY
}

say "== (a) imports before install"
check_imports before || true

shopt -s nullglob
wheels=("$WHEELS"/*.whl)
if [ ! -d "$WHEELS" ] || [ ${#wheels[@]} -eq 0 ]; then
  say "ERROR: no wheels in WHEELS=$WHEELS (need at least optuna and plotly + their deps; see the header)"
  exit 2
fi
say "== installing ${#wheels[@]} wheels into $SITE (no index, no deps, no network)"
if ! timeout 60 python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" \
     "${wheels[@]}" >> "$LOG" 2>&1; then
  say "ERROR: pip install from $WHEELS failed (see $LOG)"
  exit 2
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
say "== imports after install"
if ! check_imports after; then
  say "ERROR: a needed module is still missing after installing the wheels"
  status=2
fi
python3 -c "import sharesearch.search" >> "$LOG" 2>&1 || { say "ERROR: cannot import sharesearch.search (see $LOG)"; tail -3 "$LOG"; exit 2; }
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
have_cuda=$?

step() {  # name timeout_s command...
  local name=$1 limit=$2; shift 2
  say "== $name (timeout ${limit}s)"
  local s=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  tail -25 "$OUT/$name.txt" | tee -a "$LOG"
  say "-- $name: rc=$rc in $(( $(date +%s) - s ))s"
  [ $rc -eq 0 ] || status=1
}

if [ $have_cuda -ne 0 ]; then
  say "== no CUDA device: skipping the CUDA tests and GPU benchmarks"
  step pytest_cuda 120 python3 -m pytest -m cuda -q -p no:cacheprovider tests
else
  # budget: install 60 + pytest 150 + population 200 + weighting 60 = 470 s at most (+ 150 + 150 with FULL=1)
  step pytest_cuda 150 python3 -m pytest -m cuda -q -p no:cacheprovider tests
  step population_cuda 200 python3 benchmarks/bench_population.py --candidates --rounds 2 --sweep --device cuda
  step weighting_cuda 60 python3 benchmarks/bench_train.py --only weighting --device cuda
  if [ "${FULL:-0}" = 1 ]; then
    step bench_gpu 150 python3 benchmarks/bench_gpu.py --quick
    # e2e is left out here: its hand-written side is CPU-only (run it on the CPU: run_all.py --only e2e)
    step run_all_cuda_quick 150 python3 benchmarks/run_all.py --device cuda --quick \
         --only network --only batching --only train --only scale --only sampler --out "$OUT/run_all_cuda_quick.txt"
  fi
fi
say "== done in $(( $(date +%s) - T0 ))s, status $status; files in $OUT:"
ls -1 "$OUT" | tee -a "$LOG"
exit $status
