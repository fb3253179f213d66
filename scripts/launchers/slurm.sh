#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (Debian's slurm-wlm + munge), and srun starting 2
# ringtrain tasks on it.
#
#   scripts/launchers/slurm.sh              # the job (as the other launchers)
#   scripts/launchers/slurm.sh -- CMD ...   # srun -N1 -n2 CMD ... instead (to try the cluster)
#
# What it does, each wait bounded in time:
#   - writes a minimal slurm.conf into a fresh temp dir (SLURM_CONF points every Slurm command at
#     it; /etc/slurm is left alone): this host as controller and as the one node (CPUs=2,
#     address 127.0.0.1), partition "debug", proctrack/linuxproc + task/none (no cgroups, which a
#     container may not give), select/cons_tres, no accounting, state and logs in the temp dir,
#     ports 6817/6818 unless SLURMCTLD_PORT / SLURMD_PORT say otherwise;
#   - starts munged unless one already answers (creating /etc/munge/munge.key with mungekey if
#     missing), then slurmctld and slurmd in the foreground of background jobs (-D);
#   - waits until sinfo shows the node idle, runs `srun -N1 -n2 --kill-on-bad-exit=1 node
#     dist/cli/main.js train ...` under a timeout;
#   - stops what it started (trap): slurmd, slurmctld, and munged if it started it, and removes
#     the temp dir (KEEP_SLURM_DIR=1 keeps it, with the daemons' logs).
# srun gives each task SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_JOB_ID,
# SLURM_JOB_NODELIST: ringtrain's master is the first host of the node list (this host) on
# port 10000 + SLURM_JOB_ID % 20000.
source "$(dirname "$0")/common.sh"

for tool in slurmctld slurmd srun sinfo munged munge; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || die "$tool not found (apt-get install slurm-wlm munge)"
done
export PATH="$PATH:/usr/sbin"
NAME=slurm
WAIT="${SLURM_WAIT:-60}"
CTLD_PORT="${SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${SLURMD_PORT:-6818}"
HOST="$(hostname -s)"
USER_NAME="$(id -un)"

DIR="$(mktemp -d /tmp/ringtrain-slurm.XXXXXX)"
MUNGED_STARTED=""
CTLD_PID=""
SLURMD_PID=""
stop_all() {
  local status=$?
  set +e
  [[ -n "$SLURMD_PID" ]] && kill -TERM "$SLURMD_PID" 2>/dev/null
  [[ -n "$CTLD_PID" ]] && kill -TERM "$CTLD_PID" 2>/dev/null
  local pid
  for pid in $SLURMD_PID $CTLD_PID; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  if [[ -n "$MUNGED_STARTED" ]]; then
    local mpid; mpid="$(cat "$DIR/munged.pid" 2>/dev/null)"
    if [[ -n "$mpid" ]]; then
      kill -TERM "$mpid" 2>/dev/null
      for _ in $(seq 25); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.2; done
    else
      say "munged's pid unknown: left running"
    fi
  fi
  [[ -n "$SLURMD_PID$CTLD_PID" ]] && say "stopped slurmd and slurmctld${MUNGED_STARTED:+ and munged}"
  if [[ "${KEEP_SLURM_DIR:-}" == 1 || $status -ne 0 ]]; then say "kept $DIR (slurm.conf, logs)"; else rm -rf "$DIR"; fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_build
mkdir -p "$DIR/state" "$DIR/spool"
export SLURM_CONF="$DIR/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=ringtrain
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
machine_banner "launcher: $(srun --version 2>/dev/null || echo 'slurm ?') (Debian slurmctld $(deb_version slurmctld), slurmd $(deb_version slurmd)), $(munge --version 2>&1 | awk '{print $1; exit}')"
say "slurm.conf: $SLURM_CONF"

wait_until() { # <seconds> <what> <command...>
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      say "no $what within ${seconds}s"
      for log in "$DIR"/*.log; do [[ -f "$log" ]] && { say "--- tail of $log"; tail -n 20 "$log" >&2; }; done
      exit 1
    fi
    sleep 0.5
  done
}

# munge: Slurm's daemons and srun authenticate each other through munged.
munge_works() { munge -n | unmunge; }
if munge_works >/dev/null 2>&1; then
  say "munged already running"
else
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    say "created /etc/munge/munge.key"
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  # munged runs as the munge user (as Debian's service does) and forks into the background.
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid 2>"$DIR/munged.err" || true
  else
    munged --force --pid-file=/run/munge/munged.pid 2>"$DIR/munged.err" || true
  fi
  MUNGED_STARTED=1
  wait_until 20 "munged answering" munge_works
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || pgrep -o -x munged >"$DIR/munged.pid" || true
  say "started munged (pid $(cat "$DIR/munged.pid" 2>/dev/null || echo ?))"
fi

slurmctld -D -f "$SLURM_CONF" >"$DIR/slurmctld.out" 2>&1 &
CTLD_PID=$!
wait_until "$WAIT" "slurmctld answering (scontrol ping)" bash -c 'scontrol ping | grep -q "UP"'
slurmd -D -f "$SLURM_CONF" -N "$HOST" >"$DIR/slurmd.out" 2>&1 &
SLURMD_PID=$!
say "started slurmctld (pid $CTLD_PID) and slurmd (pid $SLURMD_PID)"
node_idle() { [[ "$(sinfo -h -N -n "$HOST" -o '%t' 2>/dev/null)" == idle ]]; }
wait_until "$WAIT" "node $HOST idle in sinfo" node_idle
sinfo >&2

CUSTOM=""
if [[ "${1:-}" == "--" ]]; then
  shift
  CUSTOM=1
  CMD=(srun -N1 -n2 --kill-on-bad-exit=1 "$@")
else
  fresh_out "$NAME"
  mapfile -t ARGS < <(job_args "$NAME")
  CMD=(srun -N1 -n2 --kill-on-bad-exit=1 "${RINGTRAIN[@]}" "${ARGS[@]}")
fi
say "\$ ${CMD[*]}"
set +e
timeout --kill-after=10 "${TIMEOUT:-300}" "${CMD[@]}"
STATUS=$?
set -e
say "exit code: $STATUS"
if [[ $STATUS -eq 0 && -z "$CUSTOM" ]]; then
  say "final weights: $(final_weights "$NAME")"
fi
exit "$STATUS"
