#!/usr/bin/env bash
# Reproduces the bundled default weights (weights/semi-drdnet-tiny.safetensors): synthesizes the
# training data from the shipped photos, trains the tiny preset semi-supervised on 64 px crops,
# fine-tunes that on 128 px crops, averages the two stages, and evaluates the result on the
# held-out light- and heavy-rain splits. The two --time-limit values keep training within the
# contract's 90 minutes (stage 1 took 70 min; stage 2, scaled to that machine's speed, about 17).
#   usage: bash scripts/train-bundled.sh [workdir]   (EXPORT=path writes the weights elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-.build/bundled}
cli="node bin/semi-drdnet.js"
rm -rf "$work" && mkdir -p "$work/pairs/rain" "$work/pairs/norain"
# Colour variants of the training photos (as is, grey, two channel rotations): with five source
# photos, a first run learned their colour casts and tinted grey held-out photos blue.
node scripts/run-ts.mjs scripts/colour-variants.ts data/photos/train "$work/clean"
export_to=${EXPORT:-weights/semi-drdnet-tiny.safetensors}
# Labelled pairs (names photo_k <-> photo): three light-rain versions of every variant and one
# heavy one, so the model sees one to four streak layers at angles from -55 to 55 degrees.
k=0
for recipe in light:1 light:2 light:3 heavy:1; do
  rain=${recipe%%:*} seed=${recipe##*:} k=$((k + 1))
  $cli synth --clean "$work/clean" -o "$work/$rain-$seed" --rain "$rain" --seed "$seed"
  for f in "$work/$rain-$seed"/rain/*.png; do cp "$f" "$work/pairs/rain/$(basename "$f" .png)_$k.png"; done
done
cp "$work/light-1"/norain/*.png "$work/pairs/norain/"
# The unlabelled "real" set: the same photos under a different recipe (denser streaks and haze),
# standing in for the synthetic-to-real gap. Only its rainy images are used.
$cli synth --clean data/photos/train -o "$work/real" --rain real --seed 11
# Held-out evaluation splits.
for rain in light heavy; do
  $cli synth --clean data/photos/heldout -o "$work/heldout-$rain" --rain "$rain" --seed 1
done
mkdir -p "$(dirname "$export_to")"
$cli train --preset tiny --data "$work/pairs" --real "$work/real/rain" \
  --steps "${STEPS:-6000}" --batch 8 --patch 64 --lr 1e-3 --milestones "${MILESTONES:-3000,4500,5400}" \
  --real-batch 2 --cr-every 8 --vgg-tap 2 --seed 1 --time-limit "${TIME_LIMIT:-72}" \
  -o "$work/tiny.ckpt.safetensors" --log "$work/train.jsonl" --export "$work/stage1.safetensors"
# Stage 2: the same data in 128 px crops, batch 2 (the same pixels per step), so the dilated
# context branches see more of each photo than 64 px; from stage 1's weights with a fresh optimizer.
$cli train --init "$work/stage1.safetensors" --data "$work/pairs" --real "$work/real/rain" \
  --steps "${STEPS2:-1200}" --batch 2 --patch 128 --lr 2e-4 --milestones "${MILESTONES2:-800,1050}" \
  --real-batch 1 --cr-every 8 --vgg-tap 2 --seed 2 --time-limit "${TIME_LIMIT2:-18}" \
  -o "$work/tiny2.ckpt.safetensors" --log "$work/train2.jsonl" --export "$work/stage2.safetensors"
# Half of each stage (WiSE-FT): stage 2 alone gains more under light rain but loses on the smooth
# photos under heavy rain; the average keeps most of the first and none of the second.
node scripts/run-ts.mjs scripts/average-weights.ts "$work/stage1.safetensors" "$work/stage2.safetensors" "$export_to" 0.5
for rain in light heavy; do
  $cli eval --weights "$export_to" --data "$work/heldout-$rain" --json > "$work/eval-$rain.json"
  $cli eval --weights "$export_to" --data "$work/heldout-$rain"
done
