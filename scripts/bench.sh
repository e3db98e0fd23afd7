#!/usr/bin/env bash
# Load benchmark of oss_upload's routes served by a real Caddy, next to
# Caddy's own `respond` and `reverse_proxy`, measured with wrk on loopback.
# Not part of ./scripts/test.sh.
#
# Knobs (environment):
#   BENCH_DURATION   length of each wrk run, as wrk takes it (default 5s)
#   BENCH_ROUNDS     rounds; a round measures every route at every connection
#                    count, and the table shows the median (default 3)
#   BENCH_CONNS      connection counts (default "16 64 256")
#   BENCH_BASE_PORT  first of 11 consecutive loopback ports (default 18400)
#
# Time: 12 routes x connection counts x rounds x BENCH_DURATION of wrk, plus
# about a minute for the Go benchmarks, builds, start-up and warm-up. With the
# defaults that is 12 x 3 x 3 x 5 s = 9 min of wrk, about 10.5 min in all. Every
# wrk and go test run is under `timeout`, so the script ends even if a
# server hangs.
#
# Installs wrk from Debian when it is missing. Writes the results, as
# markdown, to stdout and to bench-results.md (git-ignored); progress goes to
# stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-5s}
rounds=${BENCH_ROUNDS:-3}
read -r -a conns <<<"${BENCH_CONNS:-16 64 256}"
base_port=${BENCH_BASE_PORT:-18400}
results_file=bench-results.md

# Routes, in table order: id, label, port offset, request target.
route_ids=(respond floor_pp floor_presign pp_v4 pp_v1 presign_v4 presign_v1 uppy_params uppy_part sts callback proxy)
declare -A label=(
	[respond]='respond "ok" (baseline)'
	[floor_pp]="respond, post-policy V4's answer"
	[floor_presign]="respond, presign V4's answer"
	[pp_v4]="post-policy V4"
	[pp_v1]="post-policy V1"
	[presign_v4]="presign V4"
	[presign_v1]="presign V1"
	[uppy_params]="uppy params (PostObject V4)"
	[uppy_part]="uppy sign part V4"
	[sts]="sts (cache hit)"
	[callback]="callback (verify + replay)"
	[proxy]="reverse_proxy"
)
# The Uppy routes are served by the post-policy V4 site (every site has them).
declare -A port_offset=([respond]=0 [pp_v4]=1 [pp_v1]=2 [presign_v4]=3 [presign_v1]=4
	[uppy_params]=1 [uppy_part]=1 [sts]=5 [callback]=6 [proxy]=7 [floor_pp]=9 [floor_presign]=10)
upstream_offset=8
last_offset=10
# The same targets as caddyoss/bench_test.go, so the Go benchmarks and this
# table describe the same work.
declare -A target=(
	[respond]="/oss/presign?filename=a.png&type=image/png"
	[floor_pp]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
	[floor_presign]="/oss/presign?filename=a.png&type=image/png"
	[pp_v4]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
	[pp_v1]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
	[presign_v4]="/oss/presign?filename=a.png&type=image/png"
	[presign_v1]="/oss/presign?filename=a.png&type=image/png"
	[uppy_params]="/oss/uppy/s3/params?filename=a.png&type=image/png"
	[uppy_part]="" # set by check_routes, once it has started an upload
	[sts]="/oss/sts"
	[callback]="/oss/callback"
	[proxy]="/oss/callback"
)

bucket=benchbucket
access_key_id=benchak
access_key_secret=benchsecret0123456789
role_arn=acs:ram::1000000000000000:role/bench-uploader
# Alibaba signs callbacks with a 512-bit RSA key, so the benchmark's key has
# that size too: verification then costs what it costs in production.
callback_key_bits=512

log() { echo "bench: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# seconds converts a wrk duration (5, 5s, 2m) to seconds, for the timeouts.
seconds() {
	case $1 in
	*[!0-9smh]* | "") die "BENCH_DURATION: cannot read '$1' (use e.g. 5s or 1m)" ;;
	*s) echo "${1%s}" ;;
	*m) echo $((${1%m} * 60)) ;;
	*h) echo $((${1%h} * 3600)) ;;
	*) echo "$1" ;;
	esac
}

ensure_tools() {
	if ! command -v wrk >/dev/null 2>&1; then
		log "apt-get install wrk"
		local sudo=""
		[ "$(id -u)" -ne 0 ] && sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
	fi
	local tool
	for tool in taskset openssl curl go getconf; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
	done
	[ "$(nproc)" -ge 2 ] || die "needs 2 cores: Caddy on core 0, wrk and the helpers on core 1"
}

build() {
	log "go build bin/caddy bin/ossemu"
	mkdir -p bin
	go build -o bin/caddy ./cmd/caddy
	go build -o bin/ossemu ./cmd/ossemu
	# What was built: the commit, and whether the working tree differed.
	commit=$(git log -1 --oneline 2>/dev/null || echo "unknown")
	if [ -n "$(git status --porcelain -- caddyoss cmd ossemu go.mod go.sum plugin.go 2>/dev/null)" ]; then
		commit="$commit (plus uncommitted changes)"
	fi
}

# go_benchmarks runs the package's Go benchmarks before any server starts, so
# they have both cores. The test binary is built and run directly so that the
# handlers' start-up log lines (stderr) stay out of the Benchmark lines.
# BenchmarkCallbackRoute signs each request with the timer stopped, which is
# slow; a fixed iteration count still gives its allocations per request.
go_benchmarks() {
	log "go test ./caddyoss -run '^\$' -bench . -benchmem"
	local bin=$tmp/caddyoss.test out=$tmp/go-bench.txt
	if ! go test -c -o "$bin" ./caddyoss 2>"$tmp/go-bench.err"; then
		echo "(go test -c failed: $(head -3 "$tmp/go-bench.err"))" >"$out"
		go_bench_lines=$(cat "$out")
		return
	fi
	(
		cd caddyoss
		timeout 300 "$bin" -test.run '^$' -test.bench . -test.skip CallbackRoute -test.benchmem
		timeout 120 "$bin" -test.run '^$' -test.bench 'CallbackRoute' -test.benchtime 200x -test.benchmem
	) 2>>"$tmp/go-bench.err" | grep -E '^Benchmark' >"$out" || true
	if [ ! -s "$out" ]; then
		echo "(no benchmark output: $(tail -3 "$tmp/go-bench.err"))" >"$out"
	fi
	go_bench_lines=$(cat "$out")
}

check_ports_free() {
	local i p
	for i in $(seq 0 "$last_offset"); do
		p=$((base_port + i))
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			die "port $p is in use; set BENCH_BASE_PORT to the first of $((last_offset + 1)) free ports"
		fi
	done
}

pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}

start_ossemu() {
	# On core 1 with wrk: it only answers the one AssumeRole that warms the
	# STS cache, so it takes nothing from Caddy's core.
	taskset -c 1 bin/ossemu -bucket "$bucket" -key "$access_key_id:$access_key_secret" -role "$role_arn" \
		>"$tmp/ossemu.json" 2>"$tmp/ossemu.log" &
	pids+=($!)
	local i
	for i in $(seq 100); do
		[ -s "$tmp/ossemu.json" ] && break
		sleep 0.1
	done
	oss_endpoint=$(sed -n 's/.*"endpoint":"\([^"]*\)".*/\1/p' "$tmp/ossemu.json")
	sts_endpoint=$(sed -n 's/.*"stsEndpoint":"\([^"]*\)".*/\1/p' "$tmp/ossemu.json")
	[ -n "$oss_endpoint" ] && [ -n "$sts_endpoint" ] && return
	die "ossemu did not start: $(cat "$tmp/ossemu.log")"
}

# make_callback signs one genuine-looking callback with a key of our own,
# which the callback site trusts through trusted_key: the signature is RSA
# PKCS#1 v1.5 over the MD5 of "<path>\n<body>", base64 in Authorization.
# x-oss-pub-key-url may name any URL that is not Alibaba's when trusted_key
# is set, and is never fetched then.
make_callback() {
	openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$callback_key_bits" -out "$tmp/callback-key.pem" 2>/dev/null
	openssl pkey -in "$tmp/callback-key.pem" -pubout -out "$tmp/callback-pub.pem"
	local body="bucket=$bucket&object=uploads%2Falice%2F3f2a9c.png&etag=%22D41D8CD98F00B204E9800998ECF8427E%22&size=1000&mimeType=image%2Fpng"
	local sig md5 key_url
	sig=$(printf '%s\n%s' "${target[callback]}" "$body" | openssl dgst -md5 -sign "$tmp/callback-key.pem" | base64 -w0)
	md5=$(printf '%s' "$body" | openssl dgst -md5 -binary | base64 -w0)
	key_url=$(printf '%s' "http://127.0.0.1/bench-callback-key.pem" | base64 -w0)
	# The same request for the callback route and for plain reverse_proxy.
	cat >"$tmp/callback.lua" <<-EOF
		wrk.method = "POST"
		wrk.body = "$body"
		wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
		wrk.headers["Content-MD5"] = "$md5"
		wrk.headers["Authorization"] = "$sig"
		wrk.headers["x-oss-pub-key-url"] = "$key_url"
	EOF
	callback_curl=(-X POST --data-binary "$body" -H "Content-Type: application/x-www-form-urlencoded"
		-H "Content-MD5: $md5" -H "Authorization: $sig" -H "x-oss-pub-key-url: $key_url")
}

# signing_site writes one site whose oss_upload has the Go benchmarks'
# settings: a per-user prefix from a header, a size limit and a type list.
signing_site() {
	local site_port=$1 version=$2 sts=${3:-}
	cat <<-EOF
		http://:$site_port {
			bind 127.0.0.1
			oss_upload {
				bucket $bucket
				region cn-hangzhou
				endpoint $oss_endpoint
				access_key_id $access_key_id
				access_key_secret $access_key_secret
				signature_version $version
				key_prefix uploads/{http.request.header.X-User}/
				max_size 20MiB
				allow_types image/*
				$sts
			}
		}
	EOF
}

# floor_site writes a site that answers, with Caddy's respond, the answer a
# signing route gave (captured by capture_answers) with its headers: what
# serving that route would cost if signing were free. Its braces are
# replaced by parentheses, so that respond's placeholder scan passes the
# body through untouched (JSON braces look like placeholders to it); the
# size is the same. Before the capture it writes nothing.
floor_site() {
	local id=$1 extra=${2:-} body_file=$tmp/$1.json
	[ -s "$body_file" ] || return 0
	cat <<-EOF
		http://:$(port "$id") {
			bind 127.0.0.1
			header Cache-Control no-store
			header Content-Type application/json
			$extra
			respond \`$(tr '{}' '()' <"$body_file")\` 200
		}
	EOF
}

write_caddyfiles() {
	local p=$base_port
	# Admin off and no access logs: only the routes' own work is measured.
	# Errors are still logged, to a file read if something fails.
	cat >"$tmp/Caddyfile" <<-EOF
		{
			admin off
			auto_https off
			persist_config off
			storage file_system $tmp/storage
			log {
				level ERROR
			}
		}

		http://:$(port respond) {
			bind 127.0.0.1
			respond "ok"
		}
		$(floor_site floor_pp)
		$(floor_site floor_presign "header Vary Accept")

		$(signing_site "$(port pp_v4)" v4)
		$(signing_site "$(port pp_v1)" v1)
		$(signing_site "$(port presign_v4)" v4)
		$(signing_site "$(port presign_v1)" v1)
		$(signing_site "$(port sts)" v4 "sts {
			role_arn $role_arn
			endpoint $sts_endpoint
		}")

		http://:$(port callback) {
			bind 127.0.0.1
			oss_upload {
				bucket $bucket
				region cn-hangzhou
				policy_path off
				presign_path off
				callback {
					verify_only
					trusted_key $tmp/callback-pub.pem
					delivery direct
				}
			}
			reverse_proxy 127.0.0.1:$((p + upstream_offset))
		}

		http://:$(port proxy) {
			bind 127.0.0.1
			reverse_proxy 127.0.0.1:$((p + upstream_offset))
		}
	EOF
	# The app behind the callback route and reverse_proxy, in a process of
	# its own so that its work is not counted in the measured Caddy's CPU.
	cat >"$tmp/Caddyfile.upstream" <<-EOF
		{
			admin off
			auto_https off
			persist_config off
			storage file_system $tmp/storage-upstream
			log {
				level ERROR
			}
		}

		http://:$((p + upstream_offset)) {
			bind 127.0.0.1
			header Content-Type application/json
			respond \`{"ok":true}\` 200
		}
	EOF
}

wait_for_port() {
	local port=$1 name=$2 log_file=$3 i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	die "$name did not listen on $port: $(tail -5 "$log_file")"
}

# capture_answers starts the measured Caddy once without the floor sites,
# keeps one answer of post-policy V4 and presign V4 for them, and stops it.
capture_answers() {
	GOMAXPROCS=1 taskset -c 0 bin/caddy run --config "$tmp/Caddyfile" --adapter caddyfile \
		>"$tmp/caddy-capture.log" 2>&1 &
	local pid=$! id
	for id in pp_v4 presign_v4; do
		wait_for_port "$(port "$id")" caddy "$tmp/caddy-capture.log"
	done
	curl -fsS -H "X-User: alice" "$(url pp_v4)" >"$tmp/floor_pp.json" || die "post-policy V4: request failed"
	curl -fsS -H "X-User: alice" "$(url presign_v4)" >"$tmp/floor_presign.json" || die "presign V4: request failed"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	grep -q '`' "$tmp/floor_pp.json" "$tmp/floor_presign.json" && die "an answer holds a backtick"
	return 0
}

start_caddies() {
	# The measured Caddy: one P, on core 0, alone. wrk, the upstream and
	# ossemu share core 1.
	GOMAXPROCS=1 taskset -c 0 bin/caddy run --config "$tmp/Caddyfile" --adapter caddyfile \
		>"$tmp/caddy.log" 2>&1 &
	caddy_pid=$!
	pids+=("$caddy_pid")
	GOMAXPROCS=1 taskset -c 1 bin/caddy run --config "$tmp/Caddyfile.upstream" --adapter caddyfile \
		>"$tmp/caddy-upstream.log" 2>&1 &
	pids+=($!)
	local id
	for id in "${route_ids[@]}"; do
		wait_for_port "$(port "$id")" caddy "$tmp/caddy.log"
	done
	wait_for_port $((base_port + upstream_offset)) "upstream caddy" "$tmp/caddy-upstream.log"
}

port() { echo $((base_port + port_offset[$1])); }
url() { echo "http://127.0.0.1:$(port "$1")${target[$1]}"; }

# check_routes asks each route once and checks the answer. For sts this
# request fills the credential cache; for callback it is the first copy,
# delivered to the upstream and recorded, so every measured request after it
# is a replay.
check_routes() {
	local id out want upload_id key
	# The part route signs for an upload the Uppy create route started in
	# ossemu; every measured request signs part 1 of it.
	out=$(curl -fsS -X POST -H "X-User: alice" -H "Content-Type: application/json" \
		-d '{"filename":"a.png","type":"image/png"}' "http://127.0.0.1:$(port uppy_part)/oss/uppy/s3/multipart") ||
		die "uppy: create failed: $(tail -3 "$tmp/caddy.log")"
	upload_id=$(sed -n 's/.*"uploadId":"\([^"]*\)".*/\1/p' <<<"$out")
	key=$(sed -n 's/.*"key":"\([^"]*\)".*/\1/p' <<<"$out")
	[ -n "$upload_id" ] && [ -n "$key" ] || die "uppy: unexpected create answer: $out"
	target[uppy_part]="/oss/uppy/s3/multipart/$upload_id/1?key=${key//\//%2F}"
	for id in respond floor_pp floor_presign pp_v4 pp_v1 presign_v4 presign_v1 uppy_params uppy_part sts; do
		out=$(curl -fsS -H "X-User: alice" "$(url "$id")") || die "${label[$id]}: request failed"
		case $id in
		respond) want='ok' ;;
		floor_pp) want='"policy"' ;;
		floor_presign) want='("url"' ;;
		pp_*) want='"policy"' ;;
		presign_* | uppy_part) want='"url"' ;;
		uppy_params) want='"fields"' ;;
		sts) want='"AccessKeyId"' ;;
		esac
		[[ $out == *"$want"* ]] || die "${label[$id]}: unexpected answer: $out"
	done
	out=$(curl -fsS "${callback_curl[@]}" "$(url callback)") || die "callback: first copy refused: $(tail -3 "$tmp/caddy.log")"
	[[ $out == *'"ok":true'* ]] || die "callback: first copy not delivered: $out"
	out=$(curl -fsS "${callback_curl[@]}" "$(url callback)") || die "callback: replay refused"
	[[ $out == *'"status":"duplicate"'* ]] || die "callback: replay not answered as duplicate: $out"
	out=$(curl -fsS "${callback_curl[@]}" "$(url proxy)") || die "reverse_proxy: request failed"
	[[ $out == *'"ok":true'* ]] || die "reverse_proxy: unexpected answer: $out"
}

# core0_ticks prints core 0's total and idle clock ticks from /proc/stat,
# to tell a Caddy that waited for its clients (core 0 idle) from one that
# shared its core with other work.
core0_ticks() {
	awk '$1 == "cpu0" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}

cpu_ticks() {
	# Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the
	# ")" that ends the command name.
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- $stat
	echo $((${12} + ${13}))
}

# run_wrk runs one measurement and prints "requests rps p50_ms p99_ms
# cpu_us_per_request errors caddy_cpu_% core0_idle_%" (errors: non-2xx
# answers plus socket errors; the percentages of core 0's time).
run_wrk() {
	local id=$1 c=$2 d=$3 out=$tmp/wrk.out before after core_before core_after
	local args=(-t1 "-c$c" "-d$d" --latency)
	case $id in
	callback | proxy) args+=(-s "$tmp/callback.lua") ;;
	*) args+=(-H "X-User: alice") ;;
	esac
	before=$(cpu_ticks "$caddy_pid")
	core_before=$(core0_ticks)
	timeout $(($(seconds "$d") + 30)) taskset -c 1 wrk "${args[@]}" "$(url "$id")" >"$out" 2>&1 ||
		die "wrk failed for ${label[$id]}: $(cat "$out")"
	after=$(cpu_ticks "$caddy_pid")
	core_after=$(core0_ticks)
	awk -v ticks=$((after - before)) -v hz="$clk_tck" -v core="$core_before $core_after" '
		function ms(v) {
			if (v ~ /us$/) return v * 0.001
			if (v ~ /ms$/) return v * 1
			if (v ~ /m$/) return v * 60000
			if (v ~ /s$/) return v * 1000
			return v
		}
		/ requests in / { requests = $1 }
		/^Requests\/sec:/ { rps = $2 }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { errors += $NF }
		/Socket errors:/ { gsub(/[^0-9 ]/, ""); for (i = 1; i <= NF; i++) errors += $i }
		END {
			split(core, t, " ")
			total = t[3] - t[1]
			if (requests == 0 || total <= 0) { print "0 0 0 0 0 0 0 0"; exit }
			printf "%d %.1f %.3f %.3f %.2f %d %.1f %.1f\n", requests, rps, p50, p99,
				ticks * 1e6 / hz / requests, errors, 100 * ticks / total, 100 * (t[4] - t[2]) / total
		}' "$out"
}

# median of the numbers on stdin (the mean of the middle two for an even
# count).
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

measure() {
	local d_s total run=0 r c id line
	d_s=$(seconds "$duration")
	total=$((${#route_ids[@]} * ${#conns[@]} * rounds))
	log "warm-up: 1s per route"
	for id in "${route_ids[@]}"; do
		run_wrk "$id" "${conns[-1]}" 1s >/dev/null
	done
	log "$total runs of $duration: about $((total * (d_s + 1) / 60 + 1)) min"
	: >"$tmp/raw.txt"
	# Rounds are interleaved, and within a round each connection count
	# measures every route back to back, so a slow spell on the machine hits
	# all routes alike rather than one of them.
	for r in $(seq "$rounds"); do
		for c in "${conns[@]}"; do
			for id in "${route_ids[@]}"; do
				run=$((run + 1))
				line=$(run_wrk "$id" "$c" "$duration")
				echo "$id $c $r $line" >>"$tmp/raw.txt"
				log "[$run/$total] round $r, $c conns, ${label[$id]}: $(awk '{ printf "%.0f req/s, %s us CPU/req", $2, $5 }' <<<"$line")"
			done
		done
	done
}

# stat_of prints the median of one column of raw.txt for a route and
# connection count (columns: 5 rps, 6 p50, 7 p99, 8 CPU/req, 9 errors,
# 10 Caddy's share of core 0, 11 core 0 idle).
stat_of() {
	awk -v id="$1" -v c="$2" -v col="$3" '$1 == id && $2 == c { print $col }' "$tmp/raw.txt" | median
}
errors_of() {
	awk -v id="$1" -v c="$2" '$1 == id && $2 == c { n += $9 } END { print n + 0 }' "$tmp/raw.txt"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 >= b + 0) }'; }
has_conns() {
	local c
	for c in "${conns[@]}"; do [ "$c" = "$1" ] && return 0; done
	return 1
}
pass_miss() { if [ "$1" -eq 0 ]; then echo PASS; else echo MISS; fi; }

# rps_ratio prints a route's req/s over another's at one connection count.
rps_ratio() { ratio "$(stat_of "$1" "$3" 5)" "$(stat_of "$2" "$3" 5)"; }

goals() {
	local id c miss details r
	echo "## Goals"
	echo
	for id in pp_v4 presign_v4 sts; do
		if ! has_conns 16 || ! has_conns 64; then
			echo "- ${label[$id]} ≥ 0.85 × respond at 16 and 64 connections: n/a (not measured)"
			continue
		fi
		miss=0 details=""
		for c in 16 64; do
			r=$(rps_ratio "$id" respond "$c")
			at_least "$r" 0.85 || miss=1
			details+="${details:+, }$r at $c"
		done
		echo "- ${label[$id]} ≥ 0.85 × respond at 16 and 64 connections: $(pass_miss $miss) ($details)"
	done
	if has_conns 64 && has_conns 256; then
		local respond_keep keep
		respond_keep=$(ratio "$(stat_of respond 256 5)" "$(stat_of respond 64 5)")
		miss=0 details=""
		for id in pp_v4 presign_v4 sts; do
			keep=$(ratio "$(stat_of "$id" 256 5)" "$(stat_of "$id" 64 5)")
			at_least "$keep" "$respond_keep" || miss=1
			details+="${details:+, }${label[$id]} $keep"
		done
		echo "- no loss from 64 to 256 connections beyond respond's (req/s at 256 ÷ at 64; respond $respond_keep): $(pass_miss $miss) ($details)"
	else
		echo "- no loss from 64 to 256 connections beyond respond's: n/a (not measured)"
	fi
	miss=0 details=""
	for c in "${conns[@]}"; do
		r=$(rps_ratio callback proxy "$c")
		at_least "$r" 0.95 || miss=1
		details+="${details:+, }$r at $c"
	done
	echo "- callback verification ≥ 0.95 × plain reverse_proxy: $(pass_miss $miss) ($details)"
}

# goal_cell is the goal column of the table for one row.
goal_cell() {
	local id=$1 c=$2 r
	case $id in
	pp_v4 | presign_v4 | sts)
		if [ "$c" = 16 ] || [ "$c" = 64 ]; then
			r=$(rps_ratio "$id" respond "$c")
			echo "≥ 0.85: $(at_least "$r" 0.85 && echo PASS || echo MISS)"
		fi
		;;
	callback)
		r=$(rps_ratio callback proxy "$c")
		echo "≥ 0.95 × reverse_proxy ($r): $(at_least "$r" 0.95 && echo PASS || echo MISS)"
		;;
	esac
}

report() {
	local id c errors note
	echo "# oss_upload load benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load average $load_at_start at start, $load_at_end at the end (other work on the machine shows here)"
	echo "- built: $commit; $(go version | cut -d' ' -f3)"
	echo "- wrk: ${rounds} round(s) × ${duration} per route and connection count, medians shown; -t1, on core 1"
	echo "- Caddy: GOMAXPROCS=1 on core 0, admin off, no logs; the upstream (a Caddy answering {\"ok\":true}) and ossemu on core 1"
	echo
	echo "## Go benchmarks (allocations per request)"
	echo
	echo '```'
	echo "$go_bench_lines"
	echo '```'
	echo
	echo "## Through Caddy"
	echo
	echo "| route | conns | req/s | p50 ms | p99 ms | CPU µs/req | core 0: Caddy % / idle % | × respond | goal |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for id in "${route_ids[@]}"; do
		for c in "${conns[@]}"; do
			errors=$(errors_of "$id" "$c")
			note=""
			[ "$errors" -gt 0 ] && note=" (⚠ $errors errors)"
			printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %.0f / %.0f | %s | %s |\n" \
				"${label[$id]}$note" "$c" "$(stat_of "$id" "$c" 5)" \
				"$(stat_of "$id" "$c" 6)" "$(stat_of "$id" "$c" 7)" "$(stat_of "$id" "$c" 8)" \
				"$(stat_of "$id" "$c" 10)" "$(stat_of "$id" "$c" 11)" \
				"$(rps_ratio "$id" respond "$c")" "$(goal_cell "$id" "$c")"
		done
	done
	echo
	cat <<-'EOF'
		CPU µs/req: the measured Caddy's user + system time during the run, over
		the requests wrk completed. Core 0: the share of Caddy's core that Caddy
		used, and that was idle. Near 100 / 0, Caddy was the bottleneck; idle
		time means it waited for the client side (core 1); the rest went to
		other processes and interrupts on core 0.

		The two "respond, … answer" rows are Caddy's respond sending an
		answer that post-policy V4 and presign V4 gave (captured before
		measuring, braces replaced so that respond's placeholder scan
		leaves it alone; same size), with the same headers set by header
		handlers: what those routes would cost if signing cost nothing.

		callback repeats one genuine callback whose first copy was delivered and
		recorded before measuring, so it measures signature verification and the
		replay lookup in Caddy's storage (file system): every measured copy is
		answered {"status":"duplicate"} without reaching the upstream.
		reverse_proxy forwards the same POST to the upstream. sts answers from
		the credential cache, filled before measuring.

	EOF
	goals
}

main() {
	ensure_tools
	seconds "$duration" >/dev/null
	[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[ ${#conns[@]} -gt 0 ] || die "BENCH_CONNS is empty"
	clk_tck=$(getconf CLK_TCK)
	load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
	build
	tmp=$(mktemp -d)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	check_ports_free
	go_benchmarks
	make_callback
	start_ossemu
	write_caddyfiles
	capture_answers
	write_caddyfiles
	start_caddies
	check_routes
	measure
	load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)
	report >"$results_file"
	cat "$results_file"
	log "written to $results_file"
}

main "$@"
