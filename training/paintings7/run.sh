#!/bin/bash
# The long CPU run that retrains the seven bundled paintings as one multi-style johnson-mid net
# (issue #12). It spans sessions: each session resumes from training/paintings7/checkpoint.pt
# (committed, replaced by the next session), trains in the background at low priority, and
# copies its latest checkpoint back before it ends:
#
#   training/paintings7/run.sh            # start or resume in the background (nohup)
#   training/paintings7/run.sh save       # copy the work dir's checkpoint back here
#   training/paintings7/run.sh export     # write the style file from the latest checkpoint
#
# THREADS=2 when the machine has nothing else to do (1 otherwise: two OpenMP threads beside
# other work thrash). Steps: 40,000 × batch 4 = 160,000 images, ~22,900 per painting.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/rtstyle-paintings7}
OUT=${OUT:-$WORK/out}
S=../shared/data/styles
STEPS=${STEPS:-40000}
cd "$ROOT"

train() {  # train STEPS [extra options]
  local steps=$1; shift
  OMP_NUM_THREADS=${THREADS:-1} nice -n 19 python -m rtstyle.cli train multi --name paintings7 \
    --data ../shared/data/content/train \
    --style-image $S/monet_impression_sunrise.jpg --style-image $S/hokusai_great_wave.jpg \
    --style-image $S/vangogh_starry_night.jpg --style-image $S/cezanne_mont_sainte_victoire.jpg \
    --style-image $S/munch_the_scream.jpg --style-image $S/turner_the_shipwreck.jpg \
    --style-image $S/kandinsky_composition_vii.jpg \
    --names monet,ukiyoe,vangogh,cezanne,scream,shipwreck,kandinsky \
    --style-weights 0.75,5.4,3.3,0.5,3.85,4.2,5.1 --temporal-weight 80 --separable \
    --size 192 --batch 4 --steps "$steps" --lr 1e-3 --sample-every 250 --checkpoint-every 100 \
    --no-compile --work-dir "$WORK" --out "$OUT" "$@"
}

mkdir -p "$WORK"
case "${1:-start}" in
  save)
    cp "$WORK/checkpoint.pt" "$HERE/checkpoint.pt" ;;
  export)  # zero more steps: resume at the checkpoint's step, which exports the file
    step=$(python -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['step'])" \
           "$WORK/checkpoint.pt")
    train "$step" --resume --json ;;
  start)
    resume=()
    if [ ! -f "$WORK/checkpoint.pt" ] && [ -f "$HERE/checkpoint.pt" ]; then
      cp "$HERE/checkpoint.pt" "$WORK/checkpoint.pt"
    fi
    [ -f "$WORK/checkpoint.pt" ] && resume=(--resume)
    export -f train; export S WORK OUT
    nohup bash -c "$(declare -f train); train $STEPS ${resume[*]:-}" > "$WORK/log.txt" 2>&1 &
    echo "training in the background (pid $!), log: $WORK/log.txt" ;;
  *) echo "usage: $0 [start|save|export]" >&2; exit 2 ;;
esac
