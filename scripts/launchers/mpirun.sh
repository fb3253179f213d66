#!/usr/bin/env bash
# OpenMPI's mpirun (Debian's openmpi-bin) starts 2 ringtrain processes on this machine.
#
#   scripts/launchers/mpirun.sh
#
# mpirun sets OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK / _LOCAL_SIZE; it says nothing about a
# master, so ringtrain takes MASTER_ADDR=127.0.0.1 when every rank is on this host (LOCAL_SIZE =
# SIZE) and MASTER_PORT=29500 unless told. This script passes a free port with
# `-x MASTER_PORT=...` (as a multi-host job passes `-x MASTER_ADDR=<host of rank 0>`), so that it
# does not collide with another job on 29500; MASTER_PORT=29500 scripts/launchers/mpirun.sh uses
# the default port. --allow-run-as-root: mpirun refuses to run as root without it;
# --oversubscribe: let it start more processes than it counts slots.
#
# OpenMPI gives each rank a pseudo-terminal as stdout (even when mpirun's own output goes to a
# file), so ringtrain's rank 0 draws its live progress bar. When this script's stdout is not a
# terminal, each rank's stdout goes through `cat` (bash -o pipefail keeps ringtrain's exit code)
# so that the log has ringtrain's plain epoch lines; PLAIN=0 keeps mpirun's pty.
source "$(dirname "$0")/common.sh"

command -v mpirun >/dev/null || die "mpirun not found (apt-get install openmpi-bin)"
NAME=mpirun
ensure_build
machine_banner "launcher: $(mpirun --version 2>/dev/null | head -n1) (Debian openmpi-bin $(deb_version openmpi-bin))"
fresh_out "$NAME"
mapfile -t ARGS < <(job_args "$NAME")
PORT="${MASTER_PORT:-$(free_port)}"

MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2 -x "MASTER_PORT=$PORT")
CMD=("${MPIRUN[@]}" "${RINGTRAIN[@]}" "${ARGS[@]}")
say "\$ ${CMD[*]}"
if [[ "${PLAIN:-}" != 0 && ! -t 1 ]]; then
  CMD=("${MPIRUN[@]}" bash -o pipefail -c '"$@" | cat' ringtrain "${RINGTRAIN[@]}" "${ARGS[@]}")
  say "(each rank as bash -o pipefail -c '\"\$@\" | cat' ringtrain node ...: its stdout is not mpirun's pty)"
fi
set +e
timeout --kill-after=10 "${TIMEOUT:-300}" "${CMD[@]}"
STATUS=$?
set -e
say "exit code: $STATUS"
if [[ $STATUS -eq 0 ]]; then say "final weights: $(final_weights "$NAME")"; fi
exit "$STATUS"
