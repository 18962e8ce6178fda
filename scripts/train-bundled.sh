#!/usr/bin/env bash
# Reproduces the bundled default weights (weights/semi-drdnet-tiny.safetensors): synthesizes the
# training data from the shipped photos, trains the tiny preset semi-supervised, and evaluates it
# on the held-out light-rain split.   usage: bash scripts/train-bundled.sh [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-.build/bundled}
cli="node bin/semi-drdnet.js"
rm -rf "$work" && mkdir -p "$work/pairs/rain" "$work/pairs/norain"
# Colour variants of the training photos (as is, grey, two channel rotations): with five source
# photos, a first run learned their colour casts and tinted grey held-out photos blue.
node scripts/run-ts.mjs scripts/colour-variants.ts data/photos/train "$work/clean"
# Labelled pairs: two light-rain versions of every variant (names photo_k <-> photo).
for seed in 1 2; do
  $cli synth --clean "$work/clean" -o "$work/light-$seed" --rain light --seed "$seed"
  for f in "$work/light-$seed"/rain/*.png; do cp "$f" "$work/pairs/rain/$(basename "$f" .png)_$seed.png"; done
done
cp "$work/light-1"/norain/*.png "$work/pairs/norain/"
# The unlabelled "real" set: the same photos under a different recipe (denser streaks and haze),
# standing in for the synthetic-to-real gap. Only its rainy images are used.
$cli synth --clean data/photos/train -o "$work/real" --rain real --seed 11
# Held-out evaluation split.
$cli synth --clean data/photos/heldout -o "$work/heldout-light" --rain light --seed 1
mkdir -p weights
$cli train --preset tiny --data "$work/pairs" --real "$work/real/rain" \
  --steps 2000 --batch 8 --patch 64 --lr 1e-3 --milestones 900,1400,1750 \
  --real-batch 2 --cr-every 4 --vgg-tap 2 --seed 1 --time-limit "${TIME_LIMIT:-60}" \
  -o "$work/tiny.ckpt.safetensors" --log "$work/train.jsonl" --export weights/semi-drdnet-tiny.safetensors
$cli eval --weights weights/semi-drdnet-tiny.safetensors --data "$work/heldout-light" --json > "$work/eval.json"
$cli eval --weights weights/semi-drdnet-tiny.safetensors --data "$work/heldout-light"
