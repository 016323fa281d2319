#!/usr/bin/env bash
# Issue 11 in one command: Multi30k en->de, the time-to-BLEU runs one after the other (never two
# timed runs at once on a small machine), the report, then test BLEU of each nmt-preln recipe's
# final model, chosen on valid.
#
#     bash benchmarks/time_to_bleu_multi30k.sh WORK [RAW_DIR]
#
# WORK receives everything (data, checkpoints, CSVs, the PNG); RAW_DIR holds the Multi30k release
# files (e.g. /work/shared/data/multi30k-en-de), without it they are downloaded. A stage whose
# output exists is skipped, so a rerun resumes after the last finished run.
# Environment: VENV (.venv), FAIRSEQ (/opt/peers/fairseq, built by ../shared/peers/
# install_fairseq.sh; leave it out of RUNS where it is not installed), MINUTES (30) of training
# per run, RUNS ("preln_fast postln_warmup fairseq").
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:?usage: time_to_bleu_multi30k.sh WORK [RAW_DIR]}
RAW=${2:-}
B=${VENV:-.venv}/bin
FAIRSEQ=${FAIRSEQ:-/opt/peers/fairseq}
MINUTES=${MINUTES:-30}
RUNS=${RUNS:-preln_fast postln_warmup fairseq}
OUT=$WORK/ttb
BENCH=(benchmarks/bench_time_to_bleu.py)

[ -f "$WORK/raw/train.en" ] || "$B/python" -m nmt_preln.data_prep.multi30k --out "$WORK/raw" ${RAW:+--raw-dir "$RAW"}
[ -f "$WORK/bin/manifest.json" ] || "$B/nmt-preprocess" --source-lang en --target-lang de \
    --trainpref "$WORK/raw/train" --validpref "$WORK/raw/valid" --testpref "$WORK/raw/test" \
    --destdir "$WORK/bin" --joined-dictionary --spm-vocab-size 8000 --workers 2

fairseq_data() {  # fairseq's copy of the data: the same SentencePiece pieces and dictionary
    [ -f "$WORK/fsq-bin/dict.de.txt" ] && return
    mkdir -p "$WORK/fsq"
    "$B/python" - "$WORK" <<'EOF'
import sys
import sentencepiece as spm
work = sys.argv[1]
sp = spm.SentencePieceProcessor(model_file=f"{work}/bin/spm.model")
for split in ("train", "valid", "test"):
    for lang in ("en", "de"):
        with open(f"{work}/raw/{split}.{lang}", encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
        with open(f"{work}/fsq/{split}.{lang}", "w", encoding="utf-8") as f:
            f.writelines(" ".join(p) + "\n" for p in sp.encode(lines, out_type=str))
EOF
    "$FAIRSEQ/bin/fairseq-preprocess" --source-lang en --target-lang de \
        --trainpref "$WORK/fsq/train" --validpref "$WORK/fsq/valid" --testpref "$WORK/fsq/test" \
        --destdir "$WORK/fsq-bin" --srcdict "$WORK/bin/dict.en.txt" --joined-dictionary --workers 2
}

# fairseq's IWSLT-style recipe (examples/translation) at preln_fast's model size: Post-LN,
# inverse_sqrt with 4000 warm-up updates to 5e-4, dropout 0.3, weight decay 1e-4, label smoothing
# 0.1, 4096 tokens; validated like ours (greedy BLEU every 200 updates and at epoch ends).
FAIRSEQ_ARGS=(--arch transformer --encoder-layers 3 --decoder-layers 3
    --encoder-embed-dim 256 --decoder-embed-dim 256 --encoder-ffn-embed-dim 1024
    --decoder-ffn-embed-dim 1024 --encoder-attention-heads 4 --decoder-attention-heads 4
    --share-all-embeddings --optimizer adam --adam-betas "(0.9, 0.98)" --clip-norm 0.0
    --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 --dropout 0.3
    --weight-decay 0.0001 --criterion label_smoothed_cross_entropy --label-smoothing 0.1
    --max-tokens 4096 --eval-bleu --eval-bleu-args '{"beam": 1, "max_len_a": 1.2, "max_len_b": 10}'
    --eval-bleu-detok space --eval-bleu-remove-bpe sentencepiece --best-checkpoint-metric bleu
    --maximize-best-checkpoint-metric --validate-interval-updates 200 --cpu
    --log-format json --log-interval 1 --keep-last-epochs 5 --seed 1)

mkdir -p "$OUT"
for run in $RUNS; do
    [ -f "$OUT/$run.csv" ] && { echo "$run: done before ($OUT/$run.csv)"; continue; }
    uptime
    case $run in
    fairseq)
        fairseq_data
        # Two threads, set as ../shared/peers/peerbench.py sets them for fairseq.
        OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 \
        "$B/python" "${BENCH[@]}" run --name fairseq --out "$OUT" --toolkit fairseq \
            --budget-minutes "$MINUTES" -- "$FAIRSEQ/bin/fairseq-train" "$WORK/fsq-bin" \
            "${FAIRSEQ_ARGS[@]}" --save-dir "$OUT/fairseq.ckpt" ;;
    *)
        hours=$("$B/python" -c "print($MINUTES / 60)")
        "$B/python" "${BENCH[@]}" run --name "$run" --out "$OUT" -- "$B/nmt-train" \
            "+experiment=multi30k/$run" "data.path=$WORK/bin" "stop_time_hours=$hours" ;;
    esac
done

csvs=()
for run in $RUNS; do csvs+=("$OUT/$run.csv"); done
compare=()
for base in postln_warmup fairseq; do
    case " $RUNS " in *" $base "*) compare+=(--compare "preln_fast:$base") ;; esac
done
"$B/python" "${BENCH[@]}" report "${csvs[@]}" "${compare[@]}" --png "$OUT/time_to_bleu.png" \
    | tee "$OUT/report.md"

# The final model of each nmt-preln recipe, chosen on valid only: checkpoint_best.pt,
# checkpoint_last.pt or the average of the last 3 epoch checkpoints, each with beam 5 and length
# penalties 0.6, 1.0, 1.4 and 1.8 (1.4, the grid's top until 2026-12-08, won every choice of
# 2026-12-07); then that choice on test (after training, outside the training time).
final_model() {
    local run=$1 ckpt=$OUT/$1.ckpt best model lenpen
    [ -f "$ckpt/average3.pt" ] || "$B/nmt-average" --inputs "$ckpt" --num-epoch-checkpoints 3 \
        --output "$ckpt/average3.pt"
    for model in checkpoint_best checkpoint_last average3; do
        for lenpen in 0.6 1.0 1.4 1.8; do
            echo "valid $model beam 5 lenpen $lenpen: $("$B/nmt-generate" "$WORK/bin" --path "$ckpt/$model.pt" \
                --gen-subset valid --beam 5 --lenpen $lenpen --batch-size 128 --quiet 2>&1 | grep -o 'BLEU = [0-9.]*' | head -1)"
        done
    done | tee "$OUT/$run.final_valid.txt"
    best=$(sort -t= -k2 -g "$OUT/$run.final_valid.txt" | tail -1)
    model=$(echo "$best" | cut -d' ' -f2)
    lenpen=$(echo "$best" | cut -d' ' -f6 | tr -d :)
    echo "$run, chosen on valid: $best"
    "$B/nmt-generate" "$WORK/bin" --path "$ckpt/$model.pt" --gen-subset test --beam 5 --lenpen "$lenpen" \
        --batch-size 128 --quiet 2>&1 | grep -i bleu | tee "$OUT/$run.final_test.txt"
}
for run in $RUNS; do
    [ "$run" = fairseq ] || final_model "$run"
done
