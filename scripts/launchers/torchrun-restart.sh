#!/usr/bin/env bash
# torchrun restarts a group after one worker is killed; ringtrain resumes from its latest
# checkpoint and ends with the same weights as an uninterrupted run.
#
#   scripts/launchers/torchrun-restart.sh
#
# 1. Reference: the job of torchrun.sh (2 processes x 1 worker) with a checkpoint every 100 steps,
#    uninterrupted, into runs/launchers/torchrun-restart-ref.
# 2. The same command with --max_restarts=1 into runs/launchers/torchrun-restart. After rank 0's
#    "Epoch 1/..." line and the first checkpoint past epoch 1 (mid-epoch 2), this script kills
#    rank 1 with SIGKILL. Rank 0 sees its peer gone and exits non-zero; torchrun's agent restarts
#    the group with TORCHELASTIC_RESTART_COUNT=1, which ringtrain reads as --resume auto: rank 0
#    prints "resuming from ...", the run finishes.
# 3. Compares the final checkpoints: CRC32C of parameters and optimizer state (ringtrain inspect
#    --json) and the exported weights byte for byte (ringtrain export --format tfjs, cmp).
#
# Exit code: 0 when both runs succeed and the final weights are identical, else 1.
# torchrun flags: see torchrun.sh (--redirects 9:1 --tee 9:1 for torch 1.13 on Python 3.11).
# LOGLEVEL=INFO makes torchrun's agent print its restart decision.
source "$(dirname "$0")/common.sh"

command -v torchrun >/dev/null || die "torchrun not found (apt-get install python3-torch)"
TORCH_VERSION="$(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')"
REF=torchrun-restart-ref
NAME=torchrun-restart
# 100: mid-epoch checkpoints (epochs have 225 steps) off ringtrain's 64-step segments.
EVERY="${CHECKPOINT_EVERY:-100}"
RUN_TIMEOUT="${TIMEOUT:-300}"
ensure_build
machine_banner "launcher: torchrun $(command -v torchrun), torch $TORCH_VERSION (Debian python3-torch $(deb_version python3-torch), $(/usr/bin/python3 --version))"

torchrun_cmd() { # <name> <extra torchrun flags...>
  local name="$1"; shift
  local args; mapfile -t args < <(job_args "$name")
  CMD=(torchrun --standalone --nproc_per_node 2 --redirects 9:1 --tee 9:1 "$@" --no_python
       "${RINGTRAIN[@]}" "${args[@]}" --checkpoint-every "$EVERY")
}

# --- 1. the uninterrupted reference -------------------------------------------------------
fresh_out "$REF"
torchrun_cmd "$REF"
say "reference run, uninterrupted:"
say "\$ ${CMD[*]}"
set +e
timeout --kill-after=10 "$RUN_TIMEOUT" "${CMD[@]}"
REF_STATUS=$?
set -e
say "reference exit code: $REF_STATUS"
[[ $REF_STATUS -eq 0 ]] || die "the reference run failed"

# --- 2. the run with a worker killed ------------------------------------------------------
fresh_out "$NAME"
LOG="runs/launchers/$NAME.log"
torchrun_cmd "$NAME" --max_restarts=1 --monitor_interval=1
say "faulted run, rank 1 killed mid-epoch 2:"
say "\$ LOGLEVEL=INFO ${CMD[*]}"
: >"$LOG"
LOGLEVEL=INFO timeout --kill-after=10 "$RUN_TIMEOUT" "${CMD[@]}" >"$LOG" 2>&1 &
TR_PID=$!
tail --pid="$TR_PID" -n +1 -f "$LOG" &
TAIL_PID=$!
cleanup() {
  if kill -0 "$TR_PID" 2>/dev/null; then kill -TERM "$TR_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# The pids of this run's node workers whose environment has RANK=<rank> and
# TORCHELASTIC_RESTART_COUNT=<count> (torchrun's agent and `timeout` share the command line
# but not RANK).
worker_pids() { # <rank> <restart count>
  local pid
  for pid in $(pgrep -f -- "--out runs/launchers/$NAME( |$)" || true); do
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$NODE")" ]] || continue
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RANK=$1" || continue
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "TORCHELASTIC_RESTART_COUNT=$2" || continue
    echo "$pid"
  done
}

# Waits (at most <seconds>) until <command...> succeeds; fails the script if torchrun has ended.
wait_for() { # <seconds> <what> <command...>
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    kill -0 "$TR_PID" 2>/dev/null || die "torchrun ended before $what"
    ((SECONDS < deadline)) || die "no $what within ${seconds}s"
    sleep 0.2
  done
}

epoch1_line() { grep -m1 -E '^Epoch 1/' "$LOG" >/dev/null; }
wait_for 180 "'Epoch 1/' line" epoch1_line
STEPS_PER_EPOCH="$(grep -m1 -E '^Epoch 1/' "$LOG" | sed -E 's/^Epoch 1\/[0-9]+ - ([0-9]+) steps.*/\1/')"
[[ "$STEPS_PER_EPOCH" =~ ^[0-9]+$ ]] || die "cannot read the steps of epoch 1 from: $(grep -m1 -E '^Epoch 1/' "$LOG")"

# The global step of the checkpoint `latest` names (0 when none).
latest_step() {
  local latest="runs/launchers/$NAME/checkpoints/latest"
  [[ -f "$latest" ]] && sed -nE 's/^ckpt-e[0-9]+-s0*([0-9]+).*/\1/p' "$latest" | grep -E '^[0-9]+$' || echo 0
}
past_epoch1() { (( $(latest_step) > STEPS_PER_EPOCH )); }
wait_for 180 "checkpoint past step $STEPS_PER_EPOCH" past_epoch1

VICTIM="$(worker_pids 1 0 | head -n1)"
[[ -n "$VICTIM" ]] || die "rank 1's process not found"
say "latest checkpoint: $(cat "runs/launchers/$NAME/checkpoints/latest") (epoch 1 had $STEPS_PER_EPOCH steps)"
kill -KILL "$VICTIM"
say "killed rank 1 (pid $VICTIM) with SIGKILL"

has_restarted() { [[ -n "$(worker_pids 1 1)" ]]; }
wait_for 120 "restarted group (TORCHELASTIC_RESTART_COUNT=1)" has_restarted
say "torchrun restarted the group: rank 0 pid $(worker_pids 0 1 | head -n1), rank 1 pid $(worker_pids 1 1 | head -n1), TORCHELASTIC_RESTART_COUNT=1"

set +e
wait "$TR_PID"
STATUS=$?
set -e
wait "$TAIL_PID" 2>/dev/null || true
trap - EXIT
say "faulted run exit code: $STATUS"
[[ $STATUS -eq 0 ]] || die "the faulted run failed (log: $LOG)"
grep -E '^resuming from ' "$LOG" >/dev/null || die "no 'resuming from' line in $LOG"

# --- 3. compare -------------------------------------------------------------------------------
REF_WEIGHTS="$(final_weights "$REF")"
RUN_WEIGHTS="$(final_weights "$NAME")"
say "reference final weights: $REF_WEIGHTS"
say "restarted final weights: $RUN_WEIGHTS"
for run in "$REF" "$NAME"; do
  "${RINGTRAIN[@]}" export "runs/launchers/$run/checkpoints" "runs/launchers/$run/export" --format tfjs >/dev/null
done
if [[ "$REF_WEIGHTS" == "$RUN_WEIGHTS" ]] && cmp -s "runs/launchers/$REF/export/weights.bin" "runs/launchers/$NAME/export/weights.bin"; then
  say "final weights identical to the uninterrupted run: yes (same CRC32C, exported weights.bin equal byte for byte, $(stat -c %s "runs/launchers/$NAME/export/weights.bin") bytes)"
  exit 0
fi
say "final weights identical to the uninterrupted run: NO"
cmp "runs/launchers/$REF/export/weights.bin" "runs/launchers/$NAME/export/weights.bin" >&2 || true
exit 1
