# Shared by the launcher scripts in this folder (sourced, not run).
#
# Every script runs the same job: scripts/launchers/mnist-mlp.json (configs/mnist-mlp.json's
# model on the offline embedded-mnist data, 3 epochs, seed 42) as 2 processes of 1 worker
# thread each, so the final weights of every launcher are the same (2 replicas, same batches);
# each script ends by printing the CRC32C of the final parameters to compare.
set -euo pipefail

LAUNCHERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAUNCHERS_DIR/../.." && pwd)"
cd "$REPO_ROOT"

NODE="${NODE:-$(command -v node)}"
RINGTRAIN=("$NODE" "$REPO_ROOT/dist/cli/main.js")
JOB_CONFIG="scripts/launchers/mnist-mlp.json"
# Extra train flags for every launcher (e.g. JOB_FLAGS="--epochs 1").
read -r -a JOB_EXTRA <<<"${JOB_FLAGS:-}"

# The train command line each process runs, writing to runs/launchers/<name>.
job_args() { # <name>
  printf '%s\n' train "$JOB_CONFIG" --workers 1 --out "runs/launchers/$1" ${JOB_EXTRA[@]+"${JOB_EXTRA[@]}"}
}

say() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# dist/ is built by `npm run build`; build it only when it is missing (others may be mid-edit in src/).
ensure_build() {
  if [[ ! -f dist/cli/main.js ]]; then
    say "dist/cli/main.js missing: npm run build"
    npm run build --silent >&2
  fi
}

# What the run is on: printed first by every script (the facts RESULTS.md records).
machine_banner() {
  say "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  say "machine: $(nproc) cores, kernel $(uname -r), node $("$NODE" --version)"
  local line
  for line in "$@"; do say "$line"; done
}

# The installed version of a Debian package, or "?".
deb_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }

# A fresh output folder for a run (a left-over checkpoint folder would be resumed into or mixed with).
fresh_out() { # <name>
  rm -rf "runs/launchers/$1"
  mkdir -p "runs/launchers"
}

# The CRC32C of the final parameters (and optimizer state) in runs/launchers/<name>/checkpoints.
final_weights() { # <name>
  "${RINGTRAIN[@]}" inspect "runs/launchers/$1/checkpoints" --json | "$NODE" -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const c = JSON.parse(s);
      const t = Object.fromEntries(c.tensors.map((x) => [x.name, x.crc32c]));
      console.log(`epoch ${c.position.epoch}, global step ${c.position.globalStep}, replicas ${c.replicas}, params crc32c ${t.params}, optimizer state ${c.tensors.filter((x) => x.role !== "params").map((x) => `${x.name} ${x.crc32c}`).join(", ")}`);
    });'
}

# A TCP port free on loopback right now.
free_port() {
  "$NODE" -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
