#!/usr/bin/env bash
# Load benchmark of oss_upload served by a real Caddy, on loopback, in three
# parts. Not part of ./scripts/test.sh.
#   routes    the signing routes next to Caddy's own `respond` and
#             `reverse_proxy`, measured with wrk;
#   callback  the callback path with unique uploads: real PostObject uploads
#             through ossemu, each with its own signed callback, through
#             oss_upload's callback route and, for comparison, through a
#             plain reverse_proxy, on file_system and on Redis storage
#             (scripts/callbackload is the uploader and the app);
#   quota     post-policy V4 with a quota block next to the same site
#             without one, on file_system and on Redis storage, measured
#             with wrk: a user per connection, and one user for all.
#
# Knobs (environment):
#   BENCH_PARTS           parts to run (default "routes callback quota")
#   BENCH_DURATION        length of each wrk run, as wrk takes it (default 5s)
#   BENCH_ROUNDS          rounds; a round measures every route at every
#                         connection count, and the table shows the median
#                         (default 3); routes and quota
#   BENCH_CONNS           connection counts (default "16 64 256"); routes and
#                         quota
#   BENCH_BASE_PORT       first of 19 consecutive loopback ports (default 18400)
#   QUOTA_STORAGES        Caddy storages of the quota part (default
#                         "file_system redis")
#   QUOTA_GOMAXPROCS      GOMAXPROCS values of the quota part's Caddy, on one
#                         core either way (default "1"; "1 2" measures both)
#   CALLBACK_UPLOADS      uploads per storage, path and concurrency
#                         (default 4000)
#   CALLBACK_CONCURRENCY  uploads in flight (default "200 600")
#   CALLBACK_STORAGES     Caddy storages (default "file_system redis")
#   CALLBACK_ROUNDS       rounds of the callback part, medians shown (default 1)
#   CALLBACK_SIZE         bytes per upload (default 1024)
#   CALLBACK_TIMEOUT      longest run of one measurement, in seconds
#                         (default 600)
#
# Time: routes: 11 routes x connection counts x rounds x BENCH_DURATION of
# wrk, plus about a minute for the Go benchmarks, builds, start-up and
# warm-up; with the defaults 11 x 3 x 3 x 5 s = 8.25 min of wrk, about 10 min
# in all. callback: storages x concurrencies x 2 paths x rounds runs of
# CALLBACK_UPLOADS uploads at 500 to 800 uploads a second (ossemu's
# callback signing bounds it); with the defaults 8 runs, about 1.5 min.
# quota: storages x GOMAXPROCS values x 3 rows x connection counts x rounds
# x BENCH_DURATION; with the defaults 2 x 1 x 3 x 3 x 3 x 5 s = 4.5 min of
# wrk. Every wrk, go test and uploader run is under `timeout`, so the script
# ends even if a server hangs.
#
# Installs wrk and redis-server from Debian when they are missing. Writes the
# results, as markdown, to stdout and to bench-results.md (git-ignored);
# progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-5s}
rounds=${BENCH_ROUNDS:-3}
read -r -a conns <<<"${BENCH_CONNS:-16 64 256}"
base_port=${BENCH_BASE_PORT:-18400}
read -r -a parts <<<"${BENCH_PARTS:-routes callback quota}"
cb_uploads=${CALLBACK_UPLOADS:-4000}
read -r -a cb_concs <<<"${CALLBACK_CONCURRENCY:-200 600}"
read -r -a cb_storages <<<"${CALLBACK_STORAGES:-file_system redis}"
cb_rounds=${CALLBACK_ROUNDS:-1}
cb_size=${CALLBACK_SIZE:-1024}
cb_timeout=${CALLBACK_TIMEOUT:-600}
read -r -a q_storages <<<"${QUOTA_STORAGES:-file_system redis}"
read -r -a q_gmps <<<"${QUOTA_GOMAXPROCS:-1}"
results_file=bench-results.md

# Routes, in table order: id, label, port offset, request target.
route_ids=(respond floor_pp floor_presign pp_v4 pp_v1 presign_v4 presign_v1 uppy_params uppy_part sts proxy)
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
	[proxy]="reverse_proxy (a callback's POST)"
	[q_none]="post-policy V4, no quota"
	[q_conn]="post-policy V4, quota, a user per connection"
	[q_one]="post-policy V4, quota, one user"
)
# The Uppy routes are served by the post-policy V4 site (every site has them).
# Offset 6 is unused; 11 to 15 are the callback benchmark's (see
# callback_port); 16 to 18 the quota part's (the two quota rows are one
# site; 18 is its redis-server).
declare -A port_offset=([respond]=0 [pp_v4]=1 [pp_v1]=2 [presign_v4]=3 [presign_v1]=4
	[uppy_params]=1 [uppy_part]=1 [sts]=5 [proxy]=7 [floor_pp]=9 [floor_presign]=10
	[q_none]=16 [q_conn]=17 [q_one]=17)
upstream_offset=8
last_offset=18
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
	[proxy]="/oss/callback"
	[q_none]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
	[q_conn]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
	[q_one]="/oss/post-policy?filename=a.png&type=image/png&size=1000"
)

bucket=benchbucket
access_key_id=benchak
access_key_secret=benchsecret0123456789
role_arn=acs:ram::1000000000000000:role/bench-uploader

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

has_part() {
	local p
	for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
	return 1
}

ensure_tools() {
	local missing=() sudo=""
	if { has_part routes || has_part quota; } && ! command -v wrk >/dev/null 2>&1; then
		missing+=(wrk)
	fi
	if { { has_part callback && [[ " ${cb_storages[*]} " == *" redis "* ]]; } ||
		{ has_part quota && [[ " ${q_storages[*]} " == *" redis "* ]]; }; } &&
		! command -v redis-server >/dev/null 2>&1; then
		missing+=(redis-server)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt-get install ${missing[*]}"
		[ "$(id -u)" -ne 0 ] && sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	local tool
	for tool in taskset curl go getconf; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
	done
	[ "$(nproc)" -ge 2 ] || die "needs 2 cores: Caddy on core 0, wrk and the helpers on core 1"
}

build() {
	mkdir -p bin
	log "go build bin/ossemu"
	go build -o bin/ossemu ./cmd/ossemu
	if has_part routes; then
		log "go build bin/caddy"
		go build -o bin/caddy ./cmd/caddy
	fi
	if has_part callback || has_part quota; then
		# Caddy with oss_upload and caddy-storage-redis (clustertest's
		# build).
		log "go build bin/caddy-bench"
		go build -o bin/caddy-bench ./clustertest/caddy
	fi
	if has_part callback; then
		log "go build bin/callbackload"
		go build -o bin/callbackload ./scripts/callbackload
	fi
	# What was built: the commit, and whether the working tree differed.
	commit=$(git log -1 --oneline 2>/dev/null || echo "unknown")
	if [ -n "$(git status --porcelain -- caddyoss internal cmd clustertest/caddy ossemu scripts/callbackload go.mod go.sum plugin.go 2>/dev/null)" ]; then
		commit="$commit (plus uncommitted changes)"
	fi
}

# go_benchmarks runs the Go benchmarks of the handler and of the pure
# packages it signs and encodes with, before any server starts, so they
# have both cores. Each test binary is built and run directly so that the
# handlers' start-up log lines (stderr) stay out of the Benchmark lines.
# BenchmarkCallbackRoute signs each request with the timer stopped, which is
# slow; a fixed iteration count still gives its allocations per request.
go_benchmarks() {
	local out=$tmp/go-bench.txt pkg bin
	: >"$out"
	for pkg in caddyoss $(grep -l '^func Benchmark' internal/*/*_test.go | xargs -n1 dirname | sort -u); do
		log "go test ./$pkg -run '^\$' -bench . -benchmem"
		bin=$tmp/$(basename "$pkg").test
		if ! go test -c -o "$bin" "./$pkg" 2>"$tmp/go-bench.err"; then
			echo "(go test -c ./$pkg failed: $(head -3 "$tmp/go-bench.err"))" >>"$out"
			continue
		fi
		(
			cd "$pkg"
			timeout 300 "$bin" -test.run '^$' -test.bench . -test.skip CallbackRoute -test.benchmem
			if [ "$pkg" = caddyoss ]; then
				timeout 120 "$bin" -test.run '^$' -test.bench 'CallbackRoute' -test.benchtime 200x -test.benchmem
			fi
		) 2>>"$tmp/go-bench.err" | grep -E '^Benchmark' >>"$out" || true
	done
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
route_stack=()
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
	route_stack+=($!)
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

# make_proxy_request writes the request of the reverse_proxy row: a
# callback-shaped form POST (reverse_proxy checks nothing in it).
make_proxy_request() {
	local body="bucket=$bucket&object=uploads%2Falice%2F3f2a9c.png&etag=%22D41D8CD98F00B204E9800998ECF8427E%22&size=1000&mimeType=image%2Fpng"
	cat >"$tmp/proxy.lua" <<-EOF
		wrk.method = "POST"
		wrk.body = "$body"
		wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
	EOF
	proxy_curl=(-X POST --data-binary "$body" -H "Content-Type: application/x-www-form-urlencoded")
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

		http://:$(port proxy) {
			bind 127.0.0.1
			reverse_proxy 127.0.0.1:$((p + upstream_offset))
		}
	EOF
	# The app behind reverse_proxy, in a process of
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
	route_stack+=("$caddy_pid")
	GOMAXPROCS=1 taskset -c 1 bin/caddy run --config "$tmp/Caddyfile.upstream" --adapter caddyfile \
		>"$tmp/caddy-upstream.log" 2>&1 &
	pids+=($!)
	route_stack+=($!)
	local id
	for id in "${route_ids[@]}"; do
		wait_for_port "$(port "$id")" caddy "$tmp/caddy.log"
	done
	wait_for_port $((base_port + upstream_offset)) "upstream caddy" "$tmp/caddy-upstream.log"
}

port() { echo $((base_port + port_offset[$1])); }
url() { echo "http://127.0.0.1:$(port "$1")${target[$1]}"; }

# check_routes asks each route once and checks the answer. For sts this
# request fills the credential cache.
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
	out=$(curl -fsS "${proxy_curl[@]}" "$(url proxy)") || die "reverse_proxy: request failed"
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
	proxy) args+=(-s "$tmp/proxy.lua") ;;
	q_none | q_conn) args+=(-s "$tmp/users-$c.lua") ;;
	q_one) args+=(-s "$tmp/users-1.lua") ;;
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
	esac
}

# ---- The callback path: unique uploads through ossemu ----
#
# Each upload is a real PostObject to ossemu, signed by the post-policy
# route; ossemu stores the object, sends its RSA-signed callback and answers
# the uploader only when the callback is answered. Two paths, in the same
# Caddy and with the same kind of uploads:
#   verified     the site's oss_upload callback route (default settings:
#                bound, confirmed with OSS, queued delivery), then
#                reverse_proxy to the app;
#   plain proxy  uploads signed by a second oss_upload site whose callback
#                url is a site with nothing but reverse_proxy to the app.
# scripts/callbackload signs every upload first (not measured), then
# uploads with a fixed number in flight, reading the Caddy's CPU time from
# /proc/<pid>/stat around the uploads; the app counts deliveries per object.

# callback_port prints the loopback port of a part of the callback stack.
callback_port() {
	case $1 in
	verified) echo $((base_port + 11)) ;;
	proxy_signer) echo $((base_port + 12)) ;;
	proxy) echo $((base_port + 13)) ;;
	app) echo $((base_port + 14)) ;;
	redis) echo $((base_port + 15)) ;;
	esac
}

# stop ends the given processes (started by this script) and forgets them.
stop() {
	local pid kept=() p
	for pid in "$@"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		wait "$pid" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		[[ " $* " == *" $p "* ]] || kept+=("$p")
	done
	pids=("${kept[@]}")
}

# callback_site writes one oss_upload site of the callback benchmark.
# Every object of a run lands under uploads/<run id>/ (the uploader sends
# the run id as X-User), so the app's counts are per run.
callback_site() {
	local site_port=$1 callback_block=$2 after=${3:-}
	cat <<-EOF
		http://:$site_port {
			bind 127.0.0.1
			oss_upload {
				bucket $bucket
				region cn-hangzhou
				endpoint http://$cb_oss_addr
				upload_url http://$bucket.localhost:${cb_oss_addr##*:}
				access_key_id $access_key_id
				access_key_secret $access_key_secret
				key_prefix uploads/{http.request.header.X-User}/
				max_size 20MiB
				allow_types image/*
				$callback_block
			}
			$after
		}
	EOF
}

start_callback_stack() {
	local storage=$1 dir=$tmp/callback-$1 storage_cfg i
	mkdir -p "$dir"
	cb_dir=$dir
	cb_stack=()
	case $storage in
	file_system) storage_cfg="storage file_system $dir/storage" ;;
	redis)
		mkdir -p "$dir/redis"
		taskset -c 1 redis-server --bind 127.0.0.1 --port "$(callback_port redis)" --save "" --appendonly no \
			--dir "$dir/redis" >"$dir/redis.log" 2>&1 &
		pids+=($!)
		cb_stack+=($!)
		wait_for_port "$(callback_port redis)" redis-server "$dir/redis.log"
		storage_cfg="storage redis {
			host 127.0.0.1
			port $(callback_port redis)
		}"
		;;
	*) die "CALLBACK_STORAGES: unknown storage '$storage' (file_system or redis)" ;;
	esac

	# ossemu signs every callback with a 2048-bit key, on core 1.
	taskset -c 1 bin/ossemu -bucket "$bucket" -key "$access_key_id:$access_key_secret" \
		>"$dir/ossemu.json" 2>"$dir/ossemu.log" &
	cb_oss_pid=$!
	pids+=("$cb_oss_pid")
	cb_stack+=("$cb_oss_pid")
	for i in $(seq 100); do
		[ -s "$dir/ossemu.json" ] && break
		sleep 0.1
	done
	cb_oss_addr=$(sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' "$dir/ossemu.json")
	[ -n "$cb_oss_addr" ] || die "ossemu did not start: $(cat "$dir/ossemu.log")"
	curl -fsS "http://$cb_oss_addr/ossemu/callback_pub_key.pem" >"$dir/ossemu-key.pem" ||
		die "ossemu: no callback key"

	taskset -c 1 bin/callbackload app -listen "127.0.0.1:$(callback_port app)" \
		>"$dir/app.out" 2>"$dir/app.log" &
	pids+=($!)
	cb_stack+=($!)

	cat >"$dir/Caddyfile" <<-EOF
		{
			admin off
			auto_https off
			persist_config off
			$storage_cfg
			log {
				level ERROR
			}
		}

		$(callback_site "$(callback_port verified)" "callback {
			url http://127.0.0.1:$(callback_port verified)/oss/callback
			trusted_key $dir/ossemu-key.pem
		}" "reverse_proxy 127.0.0.1:$(callback_port app)")

		$(callback_site "$(callback_port proxy_signer)" "callback_path off
			callback {
				url http://127.0.0.1:$(callback_port proxy)/oss/callback
			}")

		http://:$(callback_port proxy) {
			bind 127.0.0.1
			reverse_proxy 127.0.0.1:$(callback_port app)
		}
	EOF
	GOMAXPROCS=1 XDG_DATA_HOME=$dir/data XDG_CONFIG_HOME=$dir/config taskset -c 0 \
		bin/caddy-bench run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/caddy.log" 2>&1 &
	cb_caddy_pid=$!
	pids+=("$cb_caddy_pid")
	cb_stack+=("$cb_caddy_pid")
	wait_for_port "$(callback_port app)" "the recording app" "$dir/app.log"
	for i in verified proxy_signer proxy; do
		wait_for_port "$(callback_port "$i")" caddy-bench "$dir/caddy.log"
	done
}

# callback_run runs one measurement and prints callbackload's line (see
# `bin/callbackload run -header`).
callback_run() {
	local mode=$1 c=$2 n=$3 run_id=$4 port out
	case $mode in
	verified) port=$(callback_port verified) ;;
	proxy) port=$(callback_port proxy_signer) ;;
	esac
	out=$(timeout $((cb_timeout + 30)) taskset -c 1 bin/callbackload run \
		-policy-url "http://127.0.0.1:$port/oss/post-policy" -oss-addr "$cb_oss_addr" \
		-app-url "http://127.0.0.1:$(callback_port app)" -caddy-pid "$cb_caddy_pid" -ossemu-pid "$cb_oss_pid" -clk-tck "$clk_tck" \
		-run "$run_id" -n "$n" -c "$c" -size "$cb_size" -timeout "${cb_timeout}s" 2>>"$cb_dir/load.log") ||
		die "callback run $run_id failed: $(tail -3 "$cb_dir/load.log"); caddy: $(tail -3 "$cb_dir/caddy.log")"
	echo "$out"
}

measure_callback() {
	local storage c r mode modes line total run=0 est extra
	total=$((${#cb_storages[@]} * ${#cb_concs[@]} * cb_rounds * 2))
	# At 500 to 800 uploads a second (ossemu's RSA signing bounds it).
	est=$((total * (cb_uploads / 500 + 3) / 60 + 1))
	log "callback path: $total runs of $cb_uploads uploads: about $est min"
	: >"$tmp/callback-raw.txt"
	for storage in "${cb_storages[@]}"; do
		extra=""
		[ "$storage" = redis ] && extra=", redis-server"
		log "callback path on $storage: starting ossemu, the app$extra and Caddy"
		start_callback_stack "$storage"
		# Warm-up: connections, storage, code paths; not recorded.
		for mode in verified proxy; do
			callback_run "$mode" 50 200 "warm-$mode" >/dev/null
		done
		for r in $(seq "$cb_rounds"); do
			# Alternate which path goes first, round by round.
			modes=(verified proxy)
			[ $((r % 2)) -eq 0 ] && modes=(proxy verified)
			for c in "${cb_concs[@]}"; do
				for mode in "${modes[@]}"; do
					run=$((run + 1))
					line=$(callback_run "$mode" "$c" "$cb_uploads" "${storage//_/}-$mode-$c-r$r")
					echo "$storage $c $mode $r $line" >>"$tmp/callback-raw.txt"
					log "[$run/$total] $storage, $c at once, $mode: $(awk '{ printf "%.0f uploads/s, p99 %s ms, %s us CPU/upload, %d/%d answered 200", $1 / $2, $7, $8, $3, $1 }' <<<"$line")"
				done
			done
		done
		stop "${cb_stack[@]}"
	done
}

# Columns of callback-raw.txt: 1 storage, 2 concurrency, 3 mode, 4 round,
# then callbackload's: 5 uploads, 6 seconds, 7 answered 200, 8 203,
# 9 other, 10 p50 ms, 11 p99 ms, 12 CPU µs/upload, 13 objects delivered
# 0 times, 14 once, 15 more, 16 stray deliveries, 17 deliveries marked
# verified, 18 Caddy's % of core 0, 19 core 0 busy %, 20 core 1 busy %
# (these three during the uploads), 21 ossemu's CPU µs/upload.

# cb_stat prints the median of a column for one storage, concurrency and
# mode ("uploads/s" for uploads over seconds).
cb_stat() {
	awk -v s="$1" -v c="$2" -v m="$3" -v col="$4" '$1 == s && $2 == c && $3 == m {
		print (col == "rate" ? ($6 > 0 ? $5 / $6 : 0) : $col) }' "$tmp/callback-raw.txt" | median
}
# cb_sum prints the sum of a column, optionally for one storage,
# concurrency and mode ("" matches all).
cb_sum() {
	awk -v s="$1" -v c="$2" -v m="$3" -v col="$4" '($1 == s || s == "") && ($2 == c || c == "") && ($3 == m || m == "") {
		n += $col } END { print n + 0 }' "$tmp/callback-raw.txt"
}
cb_has_conc() {
	local c
	for c in "${cb_concs[@]}"; do [ "$c" = "$1" ] && return 0; done
	return 1
}

report_callback() {
	local storage c mode label_ cpu_r p99_r
	echo "## The callback path (unique uploads through ossemu)"
	echo
	echo "| storage | uploads at once | callback path | uploads/s | p50 ms | p99 ms | Caddy CPU µs/upload | answered 200 / 203 / other | objects delivered 0 / 1 / >1 times | core 0: Caddy % / busy % | core 1 busy % | ossemu CPU µs/upload | × plain proxy: CPU / p99 |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for storage in "${cb_storages[@]}"; do
		for c in "${cb_concs[@]}"; do
			for mode in verified proxy; do
				cpu_r="" p99_r=""
				if [ "$mode" = verified ]; then
					label_="oss_upload (verified)"
					cpu_r=$(ratio "$(cb_stat "$storage" "$c" verified 12)" "$(cb_stat "$storage" "$c" proxy 12)")
					p99_r=$(ratio "$(cb_stat "$storage" "$c" verified 11)" "$(cb_stat "$storage" "$c" proxy 11)")
				else
					label_="plain reverse_proxy"
				fi
				printf "| %s | %s | %s | %.0f | %.1f | %.1f | %.0f | %d / %d / %d | %d / %d / %d%s | %.0f / %.0f | %.0f | %.0f | %s |\n" \
					"$storage" "$c" "$label_" "$(cb_stat "$storage" "$c" "$mode" rate)" \
					"$(cb_stat "$storage" "$c" "$mode" 10)" "$(cb_stat "$storage" "$c" "$mode" 11)" \
					"$(cb_stat "$storage" "$c" "$mode" 12)" \
					"$(cb_sum "$storage" "$c" "$mode" 7)" "$(cb_sum "$storage" "$c" "$mode" 8)" "$(cb_sum "$storage" "$c" "$mode" 9)" \
					"$(cb_sum "$storage" "$c" "$mode" 13)" "$(cb_sum "$storage" "$c" "$mode" 14)" "$(cb_sum "$storage" "$c" "$mode" 15)" \
					"$(stray_note "$(cb_sum "$storage" "$c" "$mode" 16)")" \
					"$(cb_stat "$storage" "$c" "$mode" 18)" "$(cb_stat "$storage" "$c" "$mode" 19)" \
					"$(cb_stat "$storage" "$c" "$mode" 20)" "$(cb_stat "$storage" "$c" "$mode" 21)" \
					"${cpu_r:+$cpu_r / $p99_r}"
			done
		done
	done
	echo
	cat <<-'EOF'
		Each upload: GET /oss/post-policy from Caddy (all of a run's policies
		are fetched before measuring), then a multipart PostObject of a file
		of random bytes to ossemu, which stores it, POSTs its RSA-signed
		callback to the callback url and answers the uploader with the
		callback's answer (200), or 203 CallbackFailed when the callback
		failed or took over 5 s. Latency: the PostObject as the uploader sees
		it, callback included. Caddy CPU: the measured Caddy's user + system
		time from the first upload until the app's delivery counts settled,
		over the uploads. Delivered: how many times the app received each
		object answered 200 or 203 (stored by OSS), keyed on the callback
		body's object field.

		Core 0 runs the measured Caddy alone (GOMAXPROCS=1); "busy" above
		Caddy's share is other work on the machine (busy is sampled per
		clock tick, so it may read a few points below Caddy's share). Core 1 runs ossemu (an
		RSA-2048 signature per callback: most of its CPU per upload), the
		uploader, the app and redis-server (whose CPU is not Caddy's). The
		core shares are over the uploads' time: when core 1 is near 100 %
		busy and core 0 is not, the emulator's side bounds uploads/s and
		adds queueing to both paths' latency alike, which brings the p99
		ratio toward 1.

	EOF
	local verified_marked delivered
	verified_marked=$(cb_sum "" "" verified 17)
	delivered=$(($(cb_sum "" "" verified 14) + $(cb_sum "" "" verified 15)))
	if [ "$delivered" -gt 0 ] && [ "$verified_marked" -eq 0 ]; then
		echo "(Note: no delivery on the verified path carried X-Oss-Callback-Verified: true.)"
		echo
	fi
}

stray_note() { [ "$1" -gt 0 ] && echo " (+$1 stray)" || true; }

callback_goals() {
	local storage c miss details r cond total ok proxy_total proxy_ok
	miss=0 details=""
	for storage in "${cb_storages[@]}"; do
		details+="${details:+; }$storage:"
		cond=""
		for c in "${cb_concs[@]}"; do
			r=$(ratio "$(cb_stat "$storage" "$c" verified 12)" "$(cb_stat "$storage" "$c" proxy 12)")
			awk -v a="$r" 'BEGIN { exit !(a != "n/a" && a + 0 <= 1.5) }' || miss=1
			cond+="${cond:+,} $r at $c"
		done
		details+="$cond"
	done
	echo "- CPU per verified upload ≤ 1.5 × plain proxy: $(pass_miss $miss) ($details)"

	if cb_has_conc 200 && cb_has_conc 600; then
		miss=0 details=""
		for storage in "${cb_storages[@]}"; do
			details+="${details:+; }$storage:"
			cond=""
			for c in 200 600; do
				r=$(ratio "$(cb_stat "$storage" "$c" verified 11)" "$(cb_stat "$storage" "$c" proxy 11)")
				awk -v a="$r" 'BEGIN { exit !(a != "n/a" && a + 0 <= 1.3) }' || miss=1
				cond+="${cond:+,} $r at $c"
			done
			details+="$cond"
		done
		echo "- p99 ≤ 1.3 × plain proxy at 200 and 600: $(pass_miss $miss) ($details)"
	else
		echo "- p99 ≤ 1.3 × plain proxy at 200 and 600: n/a (not measured)"
	fi

	total=$(cb_sum "" "" verified 5)
	ok=$(cb_sum "" "" verified 7)
	proxy_total=$(cb_sum "" "" proxy 5)
	proxy_ok=$(cb_sum "" "" proxy 7)
	miss=$((ok != total))
	echo "- every upload 200: $(pass_miss $miss) (verified: $ok of $total, $(cb_sum "" "" verified 8) answered 203, $(cb_sum "" "" verified 9) other; plain proxy: $proxy_ok of $proxy_total)"

	local d0 d1 dm stray
	d0=$(cb_sum "" "" verified 13)
	d1=$(cb_sum "" "" verified 14)
	dm=$(cb_sum "" "" verified 15)
	stray=$(cb_sum "" "" verified 16)
	miss=$((d0 + dm + stray > 0 || d1 == 0))
	echo "- every object delivered exactly once: $(pass_miss $miss) (verified: $d1 of $((d0 + d1 + dm)) stored objects once, $d0 never, $dm more than once, $stray stray deliveries; plain proxy: $(cb_sum "" "" proxy 14) of $(($(cb_sum "" "" proxy 13) + $(cb_sum "" "" proxy 14) + $(cb_sum "" "" proxy 15))) once)"
}

# ---- The quota: post-policy V4 with and without a quota block ----
#
# One Caddy per storage and GOMAXPROCS value (bin/caddy-bench: Caddy with
# oss_upload and caddy-storage-redis), on core 0 alone, with two sites that
# differ only in the quota block. Both have a callback block (a quota needs
# one: it charges uploads when their callback is verified), so both sign
# the callback and its binding; nothing is uploaded or called back. The
# quota's limits are too high to refuse anything in a run, so every request
# reserves: what is measured is the reservation, not the refusal. wrk, and
# redis-server when it is the storage, are on core 1. Rows:
#   no quota              the site without the quota block; the users as
#                         in the next row
#   a user per connection X-User is one of c users in turn (c connections),
#                         so the requests in flight at once are of distinct
#                         users: each reservation is a round of its own key
#   one user              every request of one user: the reservations in
#                         flight at once share rounds
# The users come from a wrk Lua script in all three rows, so the client's
# cost is the same. QUOTA_GOMAXPROCS="1 2" measures each storage with both:
# Caddy is on one core either way, but with one P a blocking system call
# (the fsync of a settlement's write on file_system) holds the only P until
# it returns or the runtime takes the P back, so nothing else runs
# meanwhile; the ledger's leader yields once before its round, so that the
# requests already runnable share it.
quota_ids=(q_none q_conn q_one)

quota_port() {
	case $1 in
	redis) echo $((base_port + 18)) ;;
	esac
}

# make_users_scripts writes users-<n>.lua for one user and for each
# connection count: X-User is user0 … user<n-1>, in turn.
make_users_scripts() {
	local n
	for n in 1 "${conns[@]}"; do
		cat >"$tmp/users-$n.lua" <<-EOF
			local n, i = $n, 0
			request = function()
				i = i + 1
				return wrk.format(nil, nil, { ["X-User"] = "user" .. (i % n) })
			end
		EOF
	done
}

# quota_site writes one site of the quota part: post-policy V4 with the
# routes part's settings, a callback block and, when given, a quota block.
quota_site() {
	local site_port=$1 quota_block=${2:-}
	cat <<-EOF
		http://:$site_port {
			bind 127.0.0.1
			oss_upload {
				bucket $bucket
				region cn-hangzhou
				access_key_id $access_key_id
				access_key_secret $access_key_secret
				signature_version v4
				key_prefix uploads/{http.request.header.X-User}/
				max_size 20MiB
				allow_types image/*
				callback {
					url http://127.0.0.1:$site_port/oss/callback
				}
				$quota_block
			}
		}
	EOF
}

start_quota_stack() {
	local storage=$1 gmp=$2 dir=$tmp/quota-$1-$2 storage_cfg
	mkdir -p "$dir"
	q_dir=$dir
	quota_stack=()
	q_redis_pid=""
	case $storage in
	file_system) storage_cfg="storage file_system $dir/storage" ;;
	redis)
		mkdir -p "$dir/redis"
		taskset -c 1 redis-server --bind 127.0.0.1 --port "$(quota_port redis)" --save "" --appendonly no \
			--dir "$dir/redis" >"$dir/redis.log" 2>&1 &
		q_redis_pid=$!
		pids+=("$q_redis_pid")
		quota_stack+=("$q_redis_pid")
		wait_for_port "$(quota_port redis)" redis-server "$dir/redis.log"
		storage_cfg="storage redis {
			host 127.0.0.1
			port $(quota_port redis)
		}"
		;;
	*) die "QUOTA_STORAGES: unknown storage '$storage' (file_system or redis)" ;;
	esac
	cat >"$dir/Caddyfile" <<-EOF
		{
			admin off
			auto_https off
			persist_config off
			$storage_cfg
			log {
				level ERROR
			}
		}

		$(quota_site "$(port q_none)")

		$(quota_site "$(port q_conn)" "quota {
				key {http.request.header.X-User}
				bytes 1PiB per 24h
				uploads 1000000000 per 24h
				pending 1000000000
			}")
	EOF
	# run_wrk measures $caddy_pid: the routes part's Caddy is stopped by now.
	GOMAXPROCS=$gmp XDG_DATA_HOME=$dir/data XDG_CONFIG_HOME=$dir/config taskset -c 0 \
		bin/caddy-bench run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/caddy.log" 2>&1 &
	caddy_pid=$!
	pids+=("$caddy_pid")
	quota_stack+=("$caddy_pid")
	wait_for_port "$(port q_none)" caddy-bench "$dir/caddy.log"
	wait_for_port "$(port q_conn)" caddy-bench "$dir/caddy.log"
}

# check_quota_routes asks each site once: a policy, with the quota's
# X-Quota-Remaining-* headers on the quota site only.
check_quota_routes() {
	local id out
	for id in q_none q_conn; do
		out=$(curl -fsS -i -H "X-User: check" "$(url "$id")") ||
			die "${label[$id]}: request failed: $(tail -3 "$q_dir/caddy.log")"
		[[ $out == *'"policy"'* ]] || die "${label[$id]}: unexpected answer: $out"
		case $id in
		q_none) [[ $out != *X-Quota-Remaining* ]] || die "${label[$id]}: quota headers without a quota: $out" ;;
		q_conn) [[ $out == *"X-Quota-Remaining-Bytes: "* ]] || die "${label[$id]}: no X-Quota-Remaining-Bytes: $out" ;;
		esac
	done
}

measure_quota() {
	local d_s total run=0 storage gmp r c id line before after
	d_s=$(seconds "$duration")
	total=$((${#q_storages[@]} * ${#q_gmps[@]} * ${#quota_ids[@]} * ${#conns[@]} * rounds))
	log "quota: $total runs of $duration: about $((total * (d_s + 1) / 60 + 1)) min"
	: >"$tmp/quota-raw.txt"
	for storage in "${q_storages[@]}"; do
		for gmp in "${q_gmps[@]}"; do
			measure_quota_stack
		done
	done
}

# measure_quota_stack measures every row on one storage and GOMAXPROCS
# (measure_quota's storage and gmp), in rounds.
measure_quota_stack() {
	log "quota on $storage, GOMAXPROCS=$gmp: starting Caddy$([ "$storage" = redis ] && echo " and redis-server")"
	start_quota_stack "$storage" "$gmp"
	check_quota_routes
	for id in "${quota_ids[@]}"; do
		run_wrk "$id" "${conns[-1]}" 1s >/dev/null
	done
	# As in the routes part: rounds interleaved, every row back to back.
	for r in $(seq "$rounds"); do
		for c in "${conns[@]}"; do
			for id in "${quota_ids[@]}"; do
				run=$((run + 1))
				before=0 after=0
				[ -n "$q_redis_pid" ] && before=$(cpu_ticks "$q_redis_pid")
				line=$(run_wrk "$id" "$c" "$duration")
				[ -n "$q_redis_pid" ] && after=$(cpu_ticks "$q_redis_pid")
				# Last column: redis-server's CPU µs per request.
				line="$line $(awk -v n="${line%% *}" -v t=$((after - before)) -v hz="$clk_tck" \
					'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')"
				echo "$storage $gmp $id $c $r $line" >>"$tmp/quota-raw.txt"
				log "[$run/$total] round $r, $storage, GOMAXPROCS=$gmp, $c conns, ${label[$id]}: $(awk '{ printf "%.0f req/s, %s us CPU/req", $2, $5 }' <<<"$line")"
			done
		done
	done
	stop "${quota_stack[@]}"
}

# Columns of quota-raw.txt: 1 storage, 2 GOMAXPROCS, 3 row, 4 connections,
# 5 round, then run_wrk's: 6 requests, 7 req/s, 8 p50, 9 p99, 10 Caddy CPU
# µs/req, 11 errors, 12 Caddy's % of core 0, 13 core 0 idle %; 14
# redis-server CPU µs/req.

# q_stat prints the median of a column for one storage, GOMAXPROCS, row and
# connection count.
q_stat() {
	awk -v s="$1" -v g="$2" -v id="$3" -v c="$4" -v col="$5" '$1 == s && $2 == g && $3 == id && $4 == c { print $col }' \
		"$tmp/quota-raw.txt" | median
}
q_errors() {
	awk -v s="$1" -v g="$2" -v id="$3" -v c="$4" '$1 == s && $2 == g && $3 == id && $4 == c { n += $11 } END { print n + 0 }' \
		"$tmp/quota-raw.txt"
}
# q_ratio prints a row's req/s over the no-quota row's.
q_ratio() { ratio "$(q_stat "$1" "$2" "$3" "$4" 7)" "$(q_stat "$1" "$2" q_none "$4" 7)"; }

report_quota() {
	local storage gmp id c note r goal redis_cpu errors
	echo "## Quota: post-policy V4 with and without a quota"
	echo
	echo "| storage | GOMAXPROCS | route | conns | req/s | p50 ms | p99 ms | Caddy CPU µs/req | redis-server CPU µs/req | core 0: Caddy % / idle % | × no quota | goal |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for storage in "${q_storages[@]}"; do
		for gmp in "${q_gmps[@]}"; do
			for c in "${conns[@]}"; do
				for id in "${quota_ids[@]}"; do
					note="" goal="" r=""
					errors=$(q_errors "$storage" "$gmp" "$id" "$c")
					[ "$errors" -gt 0 ] && note=" (⚠ $errors errors)"
					if [ "$id" != q_none ]; then
						r=$(q_ratio "$storage" "$gmp" "$id" "$c")
						[ "$c" = 64 ] && goal="≥ 0.5: $(at_least "$r" 0.5 && echo PASS || echo MISS)"
					fi
					redis_cpu="–"
					[ "$storage" = redis ] && redis_cpu=$(printf "%.1f" "$(q_stat "$storage" "$gmp" "$id" "$c" 14)")
					printf "| %s | %s | %s%s | %s | %.0f | %.2f | %.2f | %.1f | %s | %.0f / %.0f | %s | %s |\n" \
						"$storage" "$gmp" "${label[$id]}" "$note" "$c" "$(q_stat "$storage" "$gmp" "$id" "$c" 7)" \
						"$(q_stat "$storage" "$gmp" "$id" "$c" 8)" "$(q_stat "$storage" "$gmp" "$id" "$c" 9)" \
						"$(q_stat "$storage" "$gmp" "$id" "$c" 10)" "$redis_cpu" \
						"$(q_stat "$storage" "$gmp" "$id" "$c" 12)" "$(q_stat "$storage" "$gmp" "$id" "$c" 13)" \
						"${r:-1.00}" "$goal"
				done
			done
		done
	done
	echo
	cat <<-'EOF'
		Both sites sign post-policy V4 answers with a callback and its
		binding (a quota needs a callback block: it charges uploads when
		their callback is verified); they differ only in the quota block,
		whose limits (bytes 1PiB, uploads 1000000000 per 24h, pending
		1000000000) are too high to refuse anything, so that every request
		reserves: 1000 bytes (the declared size) for 15 minutes. Nothing is
		uploaded or settled. X-User comes from a wrk Lua script in every
		row: "a user per connection" takes one of as many users as
		connections in turn, so the requests in flight at once are of
		distinct users and every reservation is its own key's round (one
		storage write, a List of the key's folder): a site whose users sign
		now and then. "one user" sends every request as one user, whose
		reservations in flight at once share rounds: a load test, or one
		busy account. "no quota" takes its users as "a user per
		connection" does. Each user's record holds the reservations of
		this benchmark only (at most a few minutes of expiry seconds, where
		a site signing all day keeps 15 minutes of them).

		Caddy CPU is the measured Caddy's; redis-server's is on core 1 with
		wrk and not in it. On file_system the storage is this machine's
		disk, where a round that only reserves writes its record without
		fsync (a file written and put in place by exchanging names), and a
		round that settles writes with fsync. Caddy runs on core 0 alone
		whatever its GOMAXPROCS: with 1, a blocking system call holds the
		only P until it returns or the runtime takes the P back.

	EOF
}

quota_goals() {
	local id storage gmp r miss details
	if ! has_conns 64; then
		echo "- post-policy V4 with a quota ≥ 0.5 × without at 64 connections: n/a (not measured)"
		return
	fi
	for id in q_conn q_one; do
		miss=0 details=""
		for storage in "${q_storages[@]}"; do
			for gmp in "${q_gmps[@]}"; do
				r=$(q_ratio "$storage" "$gmp" "$id" 64)
				at_least "$r" 0.5 || miss=1
				details+="${details:+, }$storage GOMAXPROCS=$gmp $r"
			done
		done
		echo "- ${label[$id]} ≥ 0.5 × no quota at 64 connections: $(pass_miss $miss) ($details)"
	done
}

report() {
	echo "# oss_upload load benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load average $load_at_start at start, $load_at_end at the end (other work on the machine shows here)"
	echo "- built: $commit; $(go version | cut -d' ' -f3)"
	if has_part routes; then
		echo "- wrk: ${rounds} round(s) × ${duration} per route and connection count, medians shown; -t1, on core 1"
		echo "- Caddy: GOMAXPROCS=1 on core 0, admin off, no logs; the upstream (a Caddy answering {\"ok\":true}) and ossemu on core 1"
	fi
	if has_part quota; then
		echo "- quota: ${rounds} round(s) × ${duration} per row and connection count, medians shown; bin/caddy-bench (Caddy + oss_upload + caddy-storage-redis) on core 0 alone, GOMAXPROCS ${q_gmps[*]}; wrk -t1 and redis-server on core 1; storages: ${q_storages[*]}"
	fi
	if has_part callback; then
		echo "- callback path: ${cb_uploads} uploads of ${cb_size} bytes per storage, path and concurrency, ${cb_rounds} round(s) (medians shown); bin/caddy-bench (Caddy + oss_upload + caddy-storage-redis) with GOMAXPROCS=1 on core 0; ossemu, the uploader, the app and redis-server on core 1"
	fi
	echo
	if has_part routes; then
		report_routes
	fi
	if has_part quota; then
		report_quota
	fi
	if has_part callback; then
		report_callback
	fi
	echo "## Goals"
	echo
	if has_part routes; then
		goals
	fi
	if has_part quota; then
		quota_goals
	fi
	if has_part callback; then
		callback_goals
	fi
}

report_routes() {
	local id c errors note
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

		reverse_proxy forwards a callback-shaped form POST to the upstream
		(the callback path itself, with unique uploads, is measured in the
		next section). sts answers from the credential cache, filled before
		measuring.

	EOF
}

main() {
	ensure_tools
	seconds "$duration" >/dev/null
	[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[ ${#conns[@]} -gt 0 ] || die "BENCH_CONNS is empty"
	local p c
	[ ${#parts[@]} -gt 0 ] || die "BENCH_PARTS is empty"
	for p in "${parts[@]}"; do
		[ "$p" = routes ] || [ "$p" = callback ] || [ "$p" = quota ] || die "BENCH_PARTS: unknown part '$p' (routes, callback, quota)"
	done
	[[ $cb_uploads =~ ^[1-9][0-9]*$ ]] || die "CALLBACK_UPLOADS must be a positive integer"
	[[ $cb_rounds =~ ^[1-9][0-9]*$ ]] || die "CALLBACK_ROUNDS must be a positive integer"
	[[ $cb_size =~ ^[1-9][0-9]*$ ]] || die "CALLBACK_SIZE must be a positive integer"
	[[ $cb_timeout =~ ^[1-9][0-9]*$ ]] || die "CALLBACK_TIMEOUT must be a positive number of seconds"
	[ ${#cb_concs[@]} -gt 0 ] || die "CALLBACK_CONCURRENCY is empty"
	for c in "${cb_concs[@]}"; do
		[[ $c =~ ^[1-9][0-9]*$ ]] || die "CALLBACK_CONCURRENCY: '$c' is not a positive integer"
	done
	[ ${#cb_storages[@]} -gt 0 ] || die "CALLBACK_STORAGES is empty"
	[ ${#q_storages[@]} -gt 0 ] || die "QUOTA_STORAGES is empty"
	[ ${#q_gmps[@]} -gt 0 ] || die "QUOTA_GOMAXPROCS is empty"
	for p in "${q_gmps[@]}"; do
		[[ $p =~ ^[1-9][0-9]*$ ]] || die "QUOTA_GOMAXPROCS: '$p' is not a positive integer"
	done
	clk_tck=$(getconf CLK_TCK)
	load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
	build
	tmp=$(mktemp -d)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	check_ports_free
	if has_part routes; then
		go_benchmarks
		make_proxy_request
		start_ossemu
		write_caddyfiles
		capture_answers
		write_caddyfiles
		start_caddies
		check_routes
		measure
		# The callback part has the cores to itself.
		stop "${route_stack[@]}"
	fi
	if has_part quota; then
		make_users_scripts
		measure_quota
	fi
	if has_part callback; then
		measure_callback
	fi
	load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)
	report >"$results_file"
	cat "$results_file"
	log "written to $results_file"
}

main "$@"
