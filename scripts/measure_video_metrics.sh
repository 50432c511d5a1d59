#!/usr/bin/env bash
# Video metrics of a model on real images played as video (docs/VIDEO_METRICS.md): the alert gate
# is chosen on PolypGen's validation images only, then reported on the test images.
#
#   bash scripts/measure_video_metrics.sh [DATA] [OUT] [MODEL]
#
# DATA: the shared data folder (polypgen/{train,val,test}, pranet/TestDataset/Kvasir); OUT: where
# the clips, the JSON and the plots go (default out/video_metrics); MODEL: default the bundled INT8
# model on OpenVINO, what a bare `polyp-rt --source` runs on a CPU. About 25 minutes on 2 cores.
# The polyp-free clips are the stills back to back (25 frames each, as the issue measured them).
set -euo pipefail

DATA=${1:-../shared/data}
OUT=${2:-out/video_metrics}
MODEL=${3:-samples/polyp_cpu_int8.onnx}
BACKEND=${BACKEND:-openvino}
THREADS=${THREADS:-2}
SWEEP=(2:0 3:0 4:0 5:0 6:0 8:0 2:2 3:2 4:2 5:2 6:2 8:2 3:4 4:4 5:4 6:4)  # chosen from on val
mkdir -p "$OUT"
source "$(dirname "$0")/video_clips.sh"  # CLIP, GAP, clip, score_clip

score() {  # NAME [eval args]: OUT/NAME.json and OUT/NAME.svg
    local name=$1
    shift
    score_clip "$OUT" "$name" "$MODEL" "$OUT/$name.json" --plot "$OUT/$name.svg" --overwrite "$@"
}

clip "$OUT" val --from-images "$DATA/polypgen/val" "${GAP[@]}"
clip "$OUT" test --from-images "$DATA/polypgen/test" "$DATA/pranet/TestDataset/Kvasir" "${GAP[@]}"
for split in train val test; do
    clip "$OUT" "empty_$split" --from-images "$DATA/polypgen/$split" --pairs empty
done

# 1. choose the gate on the validation clip (150 stills: 137 with a polyp, 13 without); tau 0.1 s
#    separates the alarms of 1-2 frames (at 25 fps) from the longer ones
score val --gates "${SWEEP[@]}"
read -r N M < <(python scripts/video_metrics_summary.py choose "$OUT/val.json")
echo "gate chosen on val: --alert-min-frames $N --alert-hold $M"

# 2. report: lesions on PolypGen test + Kvasir test, false alarms on the 126 polyp-free stills
NEAR=(2:0 3:0 4:0 5:0 6:0 8:0 "$N:$M")
score test --alert-min-frames "$N" --alert-hold "$M" --gates "${NEAR[@]}"
for split in train val test; do
    score "empty_$split" --alert-min-frames "$N" --alert-hold "$M" --gates "${NEAR[@]}"
done
python scripts/video_metrics_summary.py report "$OUT" "gate $N:$M" | tee "$OUT/summary.md"
