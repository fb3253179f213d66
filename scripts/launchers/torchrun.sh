#!/usr/bin/env bash
# torchrun (Debian's python3-torch 1.13) starts 2 ringtrain processes on this machine.
#
#   scripts/launchers/torchrun.sh
#
# torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (a free
# port it picked; 1.13's agent keeps no store there, TORCHELASTIC_USE_AGENT_STORE=False, so
# ringtrain's rank 0 listens on MASTER_PORT itself), TORCHELASTIC_RUN_ID and
# TORCHELASTIC_RESTART_COUNT. --no_python: the "script" is the node command itself.
#
# --redirects 9:1 --tee 9:1: torch 1.13 on Python 3.11 crashes in its log redirection
# (AttributeError: 'NoneType' object has no attribute 'get' in to_map) with the defaults
# ("0") and with "3", because Python 3.11 no longer yields the zero and composite members when
# iterating an IntFlag (Std.NONE, Std.ALL), so Std.from_str returns None. A mapping that names a
# local rank that does not exist (9) parses into a dict, and every real rank gets Std.NONE: the
# workers' output goes straight to the console, as without the flags. ("-r 1 -t 1" or "-r 2 -t 2"
# work too, but write log files and prefix the teed stream with [defaultN]:.)
source "$(dirname "$0")/common.sh"

command -v torchrun >/dev/null || die "torchrun not found (apt-get install python3-torch)"
TORCH_VERSION="$(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')"
NAME=torchrun
ensure_build
machine_banner "launcher: torchrun $(command -v torchrun), torch $TORCH_VERSION (Debian python3-torch $(deb_version python3-torch), $(/usr/bin/python3 --version))"
fresh_out "$NAME"
mapfile -t ARGS < <(job_args "$NAME")

CMD=(torchrun --standalone --nproc_per_node 2 --redirects 9:1 --tee 9:1 --no_python "${RINGTRAIN[@]}" "${ARGS[@]}")
say "\$ ${CMD[*]}"
set +e
timeout --kill-after=10 "${TIMEOUT:-300}" "${CMD[@]}"
STATUS=$?
set -e
say "exit code: $STATUS"
if [[ $STATUS -eq 0 ]]; then say "final weights: $(final_weights "$NAME")"; fi
exit "$STATUS"
