# Sourced by scripts/measure_video_metrics.sh and scripts/hard_negative_try.sh, so that both play
# the stills as video the same way and score the clips the same way (docs/VIDEO_METRICS.md).
# PRT (default polyp-rt), BACKEND (openvino) and THREADS (2) are read when a function runs.
CLIP=(--width 640 --height 480 --fps 25 --seconds-per-image 1 --seed 7)  # 25 frames a still
GAP=(--gap-seconds 0.4)  # lesion clips: 10 dark frames between stills, two polyps never touch

clip() {  # DIR NAME [synth args]: DIR/NAME.mp4 and its truth DIR/NAME_masks/, made once
    local dir=$1 name=$2
    shift 2
    [ -f "$dir/$name.mp4" ] || "${PRT:-polyp-rt}" synth --video "$dir/$name.mp4" "${CLIP[@]}" "$@"
}

score_clip() {  # DIR NAME MODEL OUT.json [eval args]: the pipeline over the clip, its metrics as JSON
    local dir=$1 name=$2 model=$3 out=$4
    shift 4
    "${PRT:-polyp-rt}" eval --video "$dir/$name.mp4" --truth "$dir/${name}_masks" --model "$model" \
        --backend "${BACKEND:-openvino}" --threads "${THREADS:-2}" --tau 0 0.1 0.5 1 2 --json "$@" \
        >"$out.part" && mv "$out.part" "$out"  # a run cut short leaves no JSON that looks whole
}
