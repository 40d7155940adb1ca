#!/bin/bash
# bench/ab_model_command.sh with the two-process path forced (bench/model_two_processes.py):
# the whole `tracereplay model` command of two checkouts, each with its own venv, alternated
# A then B, ROUNDS pairs, no wait for the load (say the `uptime` you saw). Prints per run the
# 1-minute load at its start, wall/user/system seconds and max RSS (KB) by /usr/bin/time,
# whether the model equals REF byte for byte, and each stage's seconds from its progress line.
#   bench/ab_model_two_processes.sh A_TREE B_TREE TRACE REF_MODEL ROUNDS [OUT=/tmp]
set -u
A=${1:?usage: see the header}; B=${2:?}; TRACE=${3:?}; REF=${4:?}; ROUNDS=${5:?}; OUT=${6:-/tmp}
HERE=$(cd "$(dirname "$0")" && pwd)
for i in $(seq "$ROUNDS"); do
  for side in A B; do
    tree=$A; [ $side = B ] && tree=$B
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd /tmp && /usr/bin/time -f "%e %U %S %M" -o "$OUT/ab2-$side.time" \
      "$tree/.venv/bin/python" -P "$HERE/model_two_processes.py" "$TRACE" \
      --out "$OUT/ab2-$side.json" 2> "$OUT/ab2-$side.err") \
      || { echo "$side failed: $(tail -1 "$OUT/ab2-$side.err")"; exit 1; }
    same=$(cmp -s "$OUT/ab2-$side.json" "$REF" && echo identical || echo DIFFERENT)
    stages=$(sed -n 's/^model: \([a-z]*\): [0-9,]* rows in \([0-9.]*\) s.*/\1 \2/p' "$OUT/ab2-$side.err" | tr '\n' ' ')
    echo "$(date -u +%H:%M:%S) $side load $load wall/user/sys/KB $(cat "$OUT/ab2-$side.time") $same | $stages"
  done
done
