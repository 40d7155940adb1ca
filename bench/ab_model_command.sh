#!/bin/bash
# The whole `tracereplay model` command (console script: start, stages, the process's end) of
# two checkouts, each with its own venv (`make .venv/.installed-stamp` in it), alternated A
# then B, each run started only once the 1-minute load average is below LOAD (waits up to
# 10 min, then runs and says so). Prints per run: the load at its start, wall/user/system
# seconds and max RSS (KB) by /usr/bin/time, whether the model file equals REF byte for
# byte, and the seconds each stage's progress line gave.
#   bench/ab_model_command.sh A_TREE B_TREE TRACE REF_MODEL ROUNDS [LOAD=0.6] [OUT=/tmp]
# Options for one side's command: ARGS_A / ARGS_B (e.g. ARGS_B="--partitions 32", the same
# tree for both: the model in memory against the model in key partitions).
set -u
A=${1:?usage: see the header}; B=${2:?}; TRACE=${3:?}; REF=${4:?}; ROUNDS=${5:?}
LOAD=${6:-0.6}; OUT=${7:-/tmp}
for i in $(seq "$ROUNDS"); do
  for side in A B; do
    tree=$A; args=${ARGS_A:-}
    [ $side = B ] && tree=$B && args=${ARGS_B:-}
    waited=0
    while awk -v max="$LOAD" '{exit !($1 >= max)}' /proc/loadavg && [ $waited -lt 600 ]; do
      sleep 5; waited=$((waited + 5))
    done
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/ab-model-$side.time" \
      "$tree/.venv/bin/tracereplay" model "$TRACE" --out "$OUT/ab-model-$side.json" $args \
      2> "$OUT/ab-model-$side.err" || { echo "$side failed: $(tail -1 "$OUT/ab-model-$side.err")"; exit 1; }
    same=$(cmp -s "$OUT/ab-model-$side.json" "$REF" && echo identical || echo DIFFERENT)
    stages=$(sed -n 's/^model: \([a-z]*\): [0-9,]* rows in \([0-9.]*\) s.*/\1 \2/p' "$OUT/ab-model-$side.err" | tr '\n' ' ')
    echo "$(date -u +%H:%M:%S) $side load $load wall/user/sys/KB $(cat "$OUT/ab-model-$side.time") $same | $stages"
  done
done
