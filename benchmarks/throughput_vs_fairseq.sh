#!/usr/bin/env bash
# Issue 11's throughput target: training tokens/s of the preln_fast model at preln_fast's batch,
# nmt-preln against fairseq 0.12.2, on the peers harness (../shared/peers, fairseq installed by
# its install_fairseq.sh). fairseq and nmt-preln alternate, one process at a time, ROUNDS rounds;
# the table gives each round and the medians.
#
#     bash benchmarks/throughput_vs_fairseq.sh PEERS_DATA [ROUNDS] [MAX_TOKENS]
#
# PEERS_DATA is a directory made by the harness's make_data.py. The harness's common setup
# (3+3 layers, d_model 256, FFN 1024, 4 heads, all embeddings shared, Pre-LN, Adam, label
# smoothing 0.1, dropout 0.1, 2 threads) with what preln_fast changes: MAX_TOKENS (512) per
# batch, no attention or activation dropout, bf16 autocast for nmt-preln (fairseq has no CPU
# bf16: --bf16 needs a TPU, --fp16/--amp CUDA, so fp32 is its fastest here), and fairseq's
# --required-batch-size-multiple 1 (its default 8 would cut a ~30-sentence batch to 24, so the
# two would not train on the same batches). 400 updates per run; tokens/s are non-pad target
# tokens over the steady intervals (the harness skips the first).
# Environment: VENV (.venv, this project), PEERS (../shared/peers), PRECISION (bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "${1:?usage: throughput_vs_fairseq.sh PEERS_DATA [ROUNDS] [MAX_TOKENS]}")
ROUNDS=${2:-3}
TOKENS=${3:-512}
VENV=$(realpath "${VENV:-.venv}")
PATCH=$PWD/benchmarks/peers_train_extra.patch
PRECISION=${PRECISION:-bf16}
WORK=$(mktemp -d /tmp/throughput_vs_fairseq.XXXX)
cp -r "${PEERS:-../shared/peers}/." "$WORK/peers"
(cd "$WORK/peers" && patch -s -p1 < "$PATCH")  # --train-extra, CTranslate2 optional
COMMON=(--data "$DATA" --runs 1 --max-tokens "$TOKENS" --updates 400 --log-every 20)
cd "$WORK/peers"
for i in $(seq 0 $((ROUNDS - 1))); do
    echo "round $i: fairseq $(date -Is) |$(uptime)"
    python3 bench_fairseq.py "${COMMON[@]}" --work "$WORK/fairseq-r$i" --json "$WORK/fairseq-r$i.json" \
        --train-extra="--required-batch-size-multiple 1 --attention-dropout 0 --activation-dropout 0" \
        > "$WORK/fairseq-r$i.out" 2>&1
    echo "round $i: nmt-preln $PRECISION $(date -Is) |$(uptime)"
    python3 bench_nmt_preln.py "${COMMON[@]}" --venv "$VENV" --compute-types "" \
        --work "$WORK/nmt-r$i" --json "$WORK/nmt-r$i.json" \
        --train-extra="hardware.precision=$PRECISION arch.attention_dropout=0 arch.activation_dropout=0" \
        > "$WORK/nmt-r$i.out" 2>&1
done
echo "end $(date -Is) |$(uptime)"
"$VENV/bin/python" - "$WORK" "$ROUNDS" <<'EOF'
import json
import statistics
import sys

work, rounds = sys.argv[1], int(sys.argv[2])
def figure(name, key):
    return [json.load(open(f"{work}/{name}-r{i}.json"))["runs"][0][key] for i in range(rounds)]
fs, ours = figure("fairseq", "train_tgt_tok_per_s"), figure("nmt", "train_tgt_tok_per_s")
per_update = figure("fairseq", "train_tgt_tok_per_update"), figure("nmt", "train_tgt_tok_per_update")
print("| round | fairseq target tok/s | nmt-preln target tok/s | ratio |")
print("|---|---:|---:|---:|")
for i, (a, b) in enumerate(zip(fs, ours)):
    print(f"| {i} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x |")
a, b = statistics.median(fs), statistics.median(ours)
print(f"| median | {a:,.0f} | {b:,.0f} | **{b / a:.2f}x** |")
print(f"target tokens per update: fairseq {statistics.mean(per_update[0]):.1f}, "
      f"nmt-preln {statistics.mean(per_update[1]):.1f}; logs in {work}")
EOF
