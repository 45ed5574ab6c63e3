#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: `demo` at 2,000 users (no faults), then for
# `/healthz`, a get by id, a `userName eq` filter and a page of 100, N requests (default 1000) over one
# keep-alive connection, counted while only those run. Prints each scenario's instructions per request.
#
#   cargo build --release --bin jumpcloud-scim && examples/callgrind.sh [N]
#
# Needs valgrind, curl and python3. The profiles stay in $OUT (default a new temporary directory) for
# `callgrind_annotate --inclusive=yes $OUT/profile.*.out.N`. Under valgrind the CPU reports no SHA
# extensions, so SHA-256 of the bearer token (about 3.5k instructions here) costs far less in production.
set -euo pipefail
N=${1:-1000}
BIN=${BIN:-target/release/jumpcloud-scim}
OUT=${OUT:-$(mktemp -d)}
PORT=${PORT:-18480}
TOKEN=callgrind-token-0123456789
H="Authorization: Bearer $TOKEN"
BASE=http://127.0.0.1:$PORT
RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/profile.%p.out" \
  "$BIN" demo --listen 127.0.0.1:$PORT --users 2000 --groups 50 --fail-rate 0 --outage-every 0 \
  --token "$TOKEN" >"$OUT/demo.log" 2>&1 &
VPID=$!
trap 'kill $VPID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -sf "$BASE/readyz" >/dev/null && break
  sleep 1
done
curl -sf -H "$H" "$BASE/scim/v2/Users?count=1000&attributes=userName" >"$OUT/users.json"
python3 - "$BASE" "$N" "$OUT" <<'PY'
import json, sys, urllib.parse
base, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
users = json.load(open(f"{out}/users.json"))["Resources"]
scim = f"{base}/scim/v2"
scenarios = {
    "healthz": [f"{base}/healthz"] * n,
    "id": [f"{scim}/Users/{users[i % len(users)]['id']}" for i in range(n)],
    "eq": [f"{scim}/Users?filter=" + urllib.parse.quote(f'userName eq "{users[i % len(users)]["userName"]}"')
           for i in range(n)],
    "page": [f"{scim}/Users?startIndex={1 + (i * 100) % 1900}&count=100" for i in range(n)],
}
for name, urls in scenarios.items():
    with open(f"{out}/urls-{name}", "w") as f:
        f.writelines(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls)
PY
part=0
for s in healthz id eq page; do
  curl -s -H "$H" -K "$OUT/urls-$s" # warm
  callgrind_control -i on $VPID >/dev/null 2>&1
  curl -s -H "$H" -K "$OUT/urls-$s"
  callgrind_control -i off $VPID >/dev/null 2>&1
  callgrind_control -d "$s" $VPID >/dev/null 2>&1
  part=$((part + 1))
  total=$(callgrind_annotate "$OUT/profile.$VPID.out.$part" 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !seen { gsub(",", "", $1); print $1; seen = 1 }')
  awk -v s="$s" -v t="$total" -v n="$N" 'BEGIN { printf "%-8s %6.1fk instructions per request\n", s, t / n / 1000 }'
done
echo "profiles in $OUT"
