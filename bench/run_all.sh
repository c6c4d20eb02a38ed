#!/usr/bin/env bash
# Every benchmark, then a dated section appended to docs/benchmarks.md (summary refreshed).
#   bash bench/run_all.sh            # full run, about 13 minutes on 2 cores
#   bash bench/run_all.sh --quick    # smaller sizes, about 4 minutes (sanity check)
#   LABEL="after histogram fix" bash bench/run_all.sh   # a note in the section heading
#   BENCH_DOC=/tmp/b.md bash bench/run_all.sh --quick    # write the report elsewhere
#   BENCH_WAIT_QUIET=1 bash bench/run_all.sh  # before each script, wait for load < 1 (shared machine)
# Sets up .venv-bench (Evidently), .venv-nannyml and .venv-whylogs (kept out of .venv) when missing. Needs the project's
# .venv (make setup). Results of the run: bench/results/run-<UTC time>/ (JSON + logs).
# Exit status: non-zero when a script failed or a bar it checks itself was missed (memory
# above 300 MB, a drift decision differing from Evidently's); the report is written anyway.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
if [[ ! -x "$PY" ]]; then
  echo "run_all: $PY missing; run 'make setup' first" >&2
  exit 2
fi
bash bench/setup_venv.sh || { echo "run_all: could not set up .venv-bench" >&2; exit 2; }
# The other peers of the drift comparison; without them drift_vs_evidently.py leaves them out.
bash bench/setup_nannyml_venv.sh || echo "run_all: no .venv-nannyml: NannyML left out" >&2
bash bench/setup_whylogs_venv.sh || echo "run_all: no .venv-whylogs: whylogs left out" >&2

RUN="bench/results/run-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$RUN"
echo "results in $RUN"
status=0
wait_quiet() {  # with BENCH_WAIT_QUIET=1: wait (10 min at most) for a 1-min load average < 1
  [[ "${BENCH_WAIT_QUIET:-0}" == 1 ]] || return 0
  local i
  for i in $(seq 120); do
    awk '{exit !($1 < 1.0)}' /proc/loadavg && return 0
    (( i == 1 )) && echo "waiting for the machine to be quiet (load $(cut -d' ' -f1-3 /proc/loadavg))"
    sleep 5
  done
  echo "still busy (load $(cut -d' ' -f1-3 /proc/loadavg)); running anyway"
}
run() {  # run NAME ARGS...: one script, output shown and kept in $RUN/NAME.log
  local name=$1; shift
  wait_quiet
  echo; echo "=== $name: $PY $*"
  "$PY" "$@" --out "$RUN/$name.json" 2>&1 | tee "$RUN/$name.log"
  local rc=${PIPESTATUS[0]}
  if (( rc != 0 )); then echo "=== $name exited with $rc"; status=1; fi
}
if (( QUICK )); then
  run ingest bench/ingest.py --duration 8 --warmup 2 --in-process-batches 100
  run memory bench/memory.py --records 3000000
  run drift bench/drift_vs_evidently.py --current-rows 300000 --repeat 2
  run scaling bench/scaling.py --quick
  LABEL="${LABEL:-quick run (smaller sizes)}"
else
  run ingest bench/ingest.py
  run memory bench/memory.py
  run drift bench/drift_vs_evidently.py
  run scaling bench/scaling.py
fi
echo
"$PY" bench/report.py "$RUN" --label "${LABEL:-}" --doc "${BENCH_DOC:-docs/benchmarks.md}" || status=1
exit $status
