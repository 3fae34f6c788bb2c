#!/bin/bash
# The CPU run of the arbitrary-style (AdaIN) model for issue #12: the decoder learns to invert
# VGG-19 relu4_1 on the shared photos and 16 of the 20 shared paintings; four are held out, so
# `python benchmarks/arbitrary_heldout.py` can judge it on paintings it never saw.
#
#   training/adain/run.sh           # start or resume in the background (nohup, nice 19)
#   training/adain/run.sh export    # write the model file from the latest checkpoint
#
# A session's checkpoint (decoder + Adam state, 42 MB) is not committed; the model file it
# exports (7 MB, FP16) is the bundled rtstyle/assets/adain.v1.safetensors, and a later session starts
# from it with INIT=rtstyle/assets/adain.v1.safetensors (fresh optimizer state).
# THREADS=2 when nothing else runs (3.6 photos/s on the 2-core EPYC), 1 otherwise.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/rtstyle-adain}
OUT=${OUT:-$WORK/out}
S=../shared/data/styles
STEPS=${STEPS:-20000}
cd "$ROOT"

train() {  # train STEPS [extra options]
  local steps=$1; shift
  local init=()
  [ -n "${INIT:-}" ] && init=(--init-from "$INIT")
  OMP_NUM_THREADS=${THREADS:-1} nice -n 19 python -m rtstyle.cli train adain --name adain \
    --content ../shared/data/content/train --styles $S \
    --holdout courbet_bonjour_monsieur_courbet.jpg --holdout sakai_hoitsu_flowering_tree.jpg \
    --holdout vangogh_olive_trees.jpg --holdout monet_woman_with_a_parasol.jpg \
    --size 192 --batch 4 --lr 2e-4 --steps "$steps" --checkpoint-every 200 --sample-every 250 \
    --no-compile --work-dir "$WORK" --out "$OUT" "${init[@]}" "$@"
}

mkdir -p "$WORK"
case "${1:-start}" in
  export)  # zero more steps: resume at the checkpoint's step, which exports the file
    step=$(python -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['step'])" \
           "$WORK/checkpoint.pt")
    train "$step" --resume --json ;;
  start)
    resume=()
    [ -f "$WORK/checkpoint.pt" ] && resume=(--resume)
    export -f train; export S WORK OUT INIT
    nohup bash -c "$(declare -f train); train $STEPS ${resume[*]:-}" > "$WORK/log.txt" 2>&1 &
    echo "training in the background (pid $!), log: $WORK/log.txt" ;;
  *) echo "usage: $0 [start|export]" >&2; exit 2 ;;
esac
