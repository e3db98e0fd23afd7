#!/usr/bin/env bash
# The project's whole test suite: unit, integration (a real Caddy), emulator
# fidelity (aliyun-oss-go-sdk, sts-20150401, ali-oss under Node) and browser
# tests (Chromium). Installs what a fresh Debian machine lacks.
set -uo pipefail
cd "$(dirname "$0")/.."

log_dir=${TEST_LOG_DIR:-$(mktemp -d)}
status=0

echo "== go modules"
go mod download || exit 1

echo "== go vet"
go vet ./... || status=1

echo "== go test -race ./..."
go test -race -count=1 -v ./... >"$log_dir/go-test.log" 2>&1 || status=1
grep -E '^(ok|FAIL|panic:|--- FAIL|--- SKIP)|^\s+--- (FAIL|SKIP)' "$log_dir/go-test.log"
if grep -Eq -- '--- SKIP' "$log_dir/go-test.log"; then
	echo "some Go tests were skipped; every test must run" >&2
	status=1
fi
passed=$(grep -Ec -- '--- PASS' "$log_dir/go-test.log")
failed=$(grep -Ec -- '--- FAIL' "$log_dir/go-test.log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	grep -B5 -A30 -E '^(FAIL|panic:)' "$log_dir/go-test.log" | head -200
fi
echo "go: $passed passed, $failed failed"

exit $status
