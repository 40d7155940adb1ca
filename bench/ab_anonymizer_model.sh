#!/bin/bash
# Same raw staging traffic, anonymized by the deny-list (97bac05) and by default deny;
# each trace modelled and replayed against a fresh sandbox (127.0.0.1 only, bounded:
# 60 s of 20 staging users, replays at 1x with timeouts). Compare OUTDIR/{old,new}/model.json
# (endpoints, correlations, auth) and OUTDIR/{old,new}/replay/summary.json (failures).
set -u
WT=$(cd "$(dirname "$0")/.." && pwd); OUT=${1:?usage: bench/ab_anonymizer_model.sh OUTDIR}; TR=$WT/.venv/bin/tracereplay; PY=$WT/.venv/bin/python
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then echo "$OUT is not empty" >&2; exit 2; fi
mkdir -p "$OUT"
free() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$(free); Q=$(free)
$TR demo-target --port $P --seed 7 --login-rate-limit 0 > $OUT/target.log 2>&1 & TPID=$!
sleep 3
timeout 200 $WT/.venv/bin/mitmdump -q --mode reverse:http://127.0.0.1:$P --listen-host 127.0.0.1 --listen-port $Q -w $OUT/raw.flows > $OUT/mitm.log 2>&1 & MPID=$!
sleep 4
timeout 120 $TR demo-traffic --host http://127.0.0.1:$Q --duration 60s --users 20 --seed 7 --grace 10s > $OUT/traffic.log 2>&1
kill -INT $MPID; wait $MPID; kill $TPID; wait $TPID 2>/dev/null
$TR demo-target --print-accounts --seed 7 > $OUT/accounts.csv 2>/dev/null
export TRACEREPLAY_KEY=ab-fixed-key
$TR import $OUT/raw.flows --out $OUT/new/trace > $OUT/import_new.log 2>&1
cd $WT && $PY - "$OUT" <<'PY'
import sys, tempfile
from pathlib import Path
sys.path.insert(0, ".")
from bench.bench_anonymize import load_old_anonymizer
from tracereplay.capture.importers.run import import_files
out = Path(sys.argv[1])
make = load_old_anonymizer("97bac05", Path(tempfile.mkdtemp()))
a = make()
print(import_files([out / "raw.flows"], out / "old" / "trace", to_record=a.record, policy_hash=a.policy.hash))
PY
for v in old new; do
  $TR model $OUT/$v/trace --out $OUT/$v/model.json > $OUT/$v/model.log 2>&1
  P=$(free)
  $TR demo-target --port $P --seed 7 --login-rate-limit 0 > $OUT/$v/target.log 2>&1 & TPID=$!
  sleep 3
  timeout 300 $TR replay $OUT/$v/model.json --host http://127.0.0.1:$P --out $OUT/$v/replay --credentials $OUT/accounts.csv --scale 1 --grace 15s --seed 1 > $OUT/$v/replay.log 2>&1
  kill $TPID; wait $TPID 2>/dev/null
done
$TR scan $OUT/new/trace > $OUT/new/scan.log 2>&1; echo "scan new rc=$?"
$TR scan $OUT/old/trace > $OUT/old/scan.log 2>&1; echo "scan old rc=$?"
$PY - "$OUT" <<'PY'
import json, sys
def load(d):
    m = json.load(open(f"{d}/model.json"))
    cor = {(c["source"]["endpoint"], c["source"]["key"], c["target"]["endpoint"], c["target"]["key"])
           for c in m["correlations"]}
    return m, set(m["endpoints"]), cor, json.load(open(f"{d}/replay/summary.json"))
(a, ea, ca, sa), (b, eb, cb, sb) = load(f"{sys.argv[1]}/old"), load(f"{sys.argv[1]}/new")
print(f"endpoints {len(ea)} old, {len(eb)} new, differing: {sorted(ea ^ eb)}")
print(f"auth equal: {a['auth'] == b['auth']}; correlations {len(ca)} old, {len(cb)} new, "
      f"differing: {len(ca ^ cb)}")
for k in ("requests", "failures", "sessions_login_failed"):
    print(f"replay {k}: old {sa.get(k)}, new {sb.get(k)}")
PY
