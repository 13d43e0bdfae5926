#!/usr/bin/env bash
# Calibrate a model's threshold, then measure it with the acceptance protocol; JSON into OUTDIR.
#   bash scripts/eval_model.sh MODEL_DIR OUTDIR [DATA]
# 1. the open-set threshold: at most 1 % of strangers accepted against a 1,000-person gallery, both
#    drawn from artifacts/calibration_people.txt (LFW people in neither training nor pairsDevTest),
#    written into MODEL_DIR/model_card.json;
# 2. LFW pairsDevTest (10 interleaved folds, threshold cross-validated), unmasked and synthetic-masked;
# 3. RMFRD masked probes vs unmasked enrolment, alone and with 1,000 LFW distractors.
set -euo pipefail
MODEL=${1:?model dir}; OUT=${2:?output dir}; DATA=${3:-${FACEREC_DATA:-../shared/data}}
L=$DATA/lfw; R=$DATA/rmfrd
mkdir -p "$OUT"
E=".venv/bin/facerec-eval"
$E calibrate-gallery --model "$MODEL" --people artifacts/calibration_people.txt --images "$L/lfw-deepfunneled" --gallery-people 1000 --far 0.01 --json > "$OUT/calibrate_gallery.json"
$E verify --model "$MODEL" --pairs "$L/pairsDevTest.txt" --images "$L/lfw-deepfunneled" --json --plot "$OUT/devtest.png" > "$OUT/devtest.json"
$E verify --model "$MODEL" --pairs "$L/pairsDevTest.txt" --images "$L/lfw-deepfunneled" --masked --json --plot "$OUT/devtest_masked.png" > "$OUT/devtest_masked.json"
$E identify --model "$MODEL" --manifest "$R/manifest.csv" --images "$R" --json > "$OUT/rmfrd.json"
$E identify --model "$MODEL" --manifest "$R/manifest.csv" --images "$R" --distractors "$L/lfw-deepfunneled" --distractor-count 1000 --json > "$OUT/rmfrd_lfw1000.json"
echo "$OUT"
