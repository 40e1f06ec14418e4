#!/bin/sh
# Checks the bank's throughput ratios with wrk, a load generator
# independent of ours: real binaries, a durable data server (pebble in a
# temporary directory) with 1,000 accounts of 10^9, three business
# servers, everything in this shell's session (so that the kernel's
# autogroup scheduling shares the two cores per process, not per session:
# ../shared/PITFALLS.md). Each round runs, back to back, 5 s each:
#
#   status    the data server's /status (one wrk, 2 threads, 64 connections)
#   transfer  /transferencia/A/B/1 between random accounts, through the
#             three business servers (three wrk, 1 thread, 21/21/22
#             connections)
#   hot       /deposito/1/1 to account 1, through the three
#   spread    /deposito/A/1 to a random account of 1,000, through the three
#   batchN    POST /transferencias of N random transfers (N = $BATCHES),
#             through the three, $BATCH_CONNS connections each (default
#             1: a batch of 1,000 locks nearly every account, so more
#             batches at once only queue)
#
# and prints requests/s (transfers/s for batches: requests x N) and p99 of
# each, then the medians of the ratios over the rounds. wrk counts every
# answer; the Lua scripts count non-2xx answers, which are printed and
# must be 0.
#
# Usage: benchmarks/wrk.sh [ROUNDS]   (default 3; needs wrk: apt-get install wrk)
# Environment: BUSINESS_ARGS (extra business server flags, e.g.
# "--coalesce 0"), DATA_ARGS (extra data server flags), BATCHES (default
# "1000"), DURATION (default 5s).
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
duration=${DURATION:-5s}
batches=${BATCHES:-1000}
batch_conns=${BATCH_CONNS:-1}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

go build -o "$tmp/dataserver" ./cmd/dataserver
go build -o "$tmp/businessserver" ./cmd/businessserver

export BANK_SERVER_TOKEN=wrk-bench-server-token
# shellcheck disable=SC2086
"$tmp/dataserver" --port 5900 --host 127.0.0.1 --data-dir "$tmp/data" --accounts 1000 --balance 1000000000 \
	--log "$tmp/data.log" ${DATA_ARGS:-} 2>"$tmp/data.err" &
pids="$pids $!"
for port in 5901 5902 5903; do
	# shellcheck disable=SC2086
	"$tmp/businessserver" --host 127.0.0.1 --log "$tmp/b$port.log" ${BUSINESS_ARGS:-} http://127.0.0.1:5900 "$port" 2>"$tmp/b$port.err" &
	pids="$pids $!"
done
for port in 5900 5901 5902 5903; do
	i=0
	until wrk -t1 -c1 -d1s "http://127.0.0.1:$port/status" 2>/dev/null | grep -q "Requests/sec"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then echo "server on $port did not start:" >&2; cat "$tmp"/*.err >&2; exit 1; fi
		sleep 0.1
	done
done

# Every script counts the answers that are not 2xx, and prints them.
cat >"$tmp/common.lua" <<'EOF'
bad = 0
response = function(status, headers, body)
	if status < 200 or status > 299 then bad = bad + 1 end
end
done = function(summary, latency, requests)
	io.write(string.format("RESULT %d %.0f %d\n", summary.requests, latency:percentile(99), bad))
end
EOF
cat >"$tmp/transfer.lua" <<'EOF'
dofile(os.getenv("COMMON"))
request = function()
	local a = math.random(1000)
	local b = math.random(999)
	if b >= a then b = b + 1 end
	return wrk.format("GET", "/transferencia/" .. a .. "/" .. b .. "/1", {token = "ba0f"})
end
EOF
cat >"$tmp/hot.lua" <<'EOF'
dofile(os.getenv("COMMON"))
request = function() return wrk.format("GET", "/deposito/1/1", {token = "ba0f"}) end
EOF
cat >"$tmp/spread.lua" <<'EOF'
dofile(os.getenv("COMMON"))
request = function() return wrk.format("GET", "/deposito/" .. math.random(1000) .. "/1", {token = "ba0f"}) end
EOF
cat >"$tmp/batch.lua" <<'EOF'
dofile(os.getenv("COMMON"))
local n = tonumber(os.getenv("BATCH"))
request = function()
	local parts = {}
	for i = 1, n do
		local a = math.random(1000)
		local b = math.random(999)
		if b >= a then b = b + 1 end
		parts[i] = '{"conta_orig":' .. a .. ',"conta_dest":' .. b .. ',"valor":1}'
	end
	return wrk.format("POST", "/transferencias", {token = "ba0f", ["Content-Type"] = "application/json"}, "[" .. table.concat(parts, ",") .. "]")
end
EOF
export COMMON="$tmp/common.lua"

# run NAME CONNS SCRIPT URL...: one wrk per URL at once; prints NAME, the
# summed requests/s, the worst p99 (ms) and the non-2xx answers.
run() {
	name=$1 conns=$2 script=$3
	shift 3
	outs="" wpids=""
	k=0
	for url in "$@"; do
		k=$((k + 1))
		wrk -t1 -c"$conns" -d"$duration" -s "$tmp/$script.lua" "$url" >"$tmp/out.$k" 2>&1 &
		wpids="$wpids $!"
		outs="$outs $tmp/out.$k"
	done
	for p in $wpids; do wait "$p" || true; done
	# shellcheck disable=SC2086
	awk -v name="$name" -v d="$duration" '
		/^RESULT/ { req += $2; if ($3 > p99) p99 = $3; bad += $4 }
		END { secs = d; sub(/s$/, "", secs); printf "%s %.0f %.2f %d\n", name, req / secs, p99 / 1000, bad }' $outs
}

b1=http://127.0.0.1:5901 b2=http://127.0.0.1:5902 b3=http://127.0.0.1:5903
: >"$tmp/rounds"
for r in $(seq "$rounds"); do
	echo "== round $r"
	{
		out=$(wrk -t2 -c64 -d"$duration" -s "$COMMON" http://127.0.0.1:5900/status)
		echo "$out" | awk -v d="$duration" '/^RESULT/ { secs = d; sub(/s$/, "", secs); printf "status %.0f %.2f %d\n", $2 / secs, $3 / 1000, $4 }'
		run transfer 21 transfer "$b1" "$b2" "$b3"
		run hot 21 hot "$b1" "$b2" "$b3"
		run spread 21 spread "$b1" "$b2" "$b3"
		for n in $batches; do
			BATCH=$n run "batch$n" "$batch_conns" batch "$b1" "$b2" "$b3" | awk -v n="$n" '{ printf "%s %.0f %s %s\n", $1, $2 * n, $3, $4 }'
		done
	} | tee -a "$tmp/rounds" | awk '{ printf "  %-10s %10s/s   p99 %8s ms   non-2xx %s\n", $1, $2, $3, $4 }'
done

echo "== medians over $rounds rounds"
awk -v rounds="$rounds" '
	{ v[$1, ++n[$1]] = $2; names[$1] = 1 }
	function median(name,   i, j, t, k, a) {
		k = n[name]
		for (i = 1; i <= k; i++) a[i] = v[name, i]
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((k + 1) / 2)]
	}
	END {
		for (name in names) printf "  %-10s %10.0f/s\n", name, median(name)
		# Ratios per round, then their medians.
		for (i = 1; i <= n["status"]; i++) {
			tr[i] = v["transfer", i] / v["status", i]
			hs[i] = v["hot", i] / v["spread", i]
		}
		k = n["status"]
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) { if (tr[j] < tr[i]) { t = tr[i]; tr[i] = tr[j]; tr[j] = t }; if (hs[j] < hs[i]) { t = hs[i]; hs[i] = hs[j]; hs[j] = t } }
		printf "  transfers/status  %.3f (%.3f-%.3f)\n", tr[int((k + 1) / 2)], tr[1], tr[k]
		printf "  hot/spread        %.3f (%.3f-%.3f)\n", hs[int((k + 1) / 2)], hs[1], hs[k]
		for (name in names) if (name ~ /^batch/) printf "  %s/transfer  %.1f\n", name, median(name) / median("transfer")
	}' "$tmp/rounds"
