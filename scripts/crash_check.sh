#!/usr/bin/env bash
# Manual check of crash safety with the real seed model on the demo feeds:
# ingest the demo feeds, SIGKILL `finsentinel classify` mid-stream, restart it, index, and
# verify that every raw item is in the index exactly once. Usage: scripts/crash_check.sh [WORKDIR]
set -euo pipefail
ws=${1:-$(mktemp -d)}
bin=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin
model=$(cd "$(dirname "$0")/.." && pwd)/models/finsentinel-seed
mkdir -p "$ws" && cd "$ws"
cat > finsentinel.yaml <<YAML
bus: {local: {path: $ws/bus.sqlite3}}
ingest: {state_path: $ws/ingest.sqlite3}
nlp: {model_dir: $model, batch_size: 4}
alerting: {index: {path: $ws/index.sqlite3}}
log_level: WARNING
YAML
"$bin/finsentinel" ingest --once --demo-sources
"$bin/finsentinel" classify & pid=$!
scored() { "$bin/python" -c "from finsentinel.bus.local import LocalBus; print(LocalBus('$ws/bus.sqlite3').end_offsets(['news.scored'])['news.scored'])"; }
until [ "$(scored)" -ge 60 ]; do sleep 0.2; done
kill -9 $pid; wait $pid || true
echo "killed classify with $(scored) scored records on the bus"
"$bin/finsentinel" classify --idle-exit 3
"$bin/finsentinel" alert --idle-exit 3
"$bin/python" - <<PY
import json, sqlite3
from finsentinel.bus.local import LocalBus
from finsentinel.schema import RawItem
bus = LocalBus("$ws/bus.sqlite3")
c = bus.consumer("check", ["news.raw"])
ids = set()
while batch := c.poll(1000, 0.2):
    ids |= {RawItem.from_json(r.value).id for r in batch}
db = sqlite3.connect("$ws/index.sqlite3")
rows = [r[0] for r in db.execute("SELECT id FROM items")]
print(json.dumps({"raw_items": len(ids), "scored_records": bus.end_offsets(["news.scored"])["news.scored"],
                  "index_rows": len(rows), "distinct_index_ids": len(set(rows)),
                  "exactly_once": set(rows) == ids and len(rows) == len(ids)}))
PY
