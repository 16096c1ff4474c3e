#!/usr/bin/env bash
# make test-faults: the fault-injection suite (daemon/e2e/faults_test.go,
# the other TestFault* cases, and the hostile-load and operator-mistake
# cases of docs/reliability.md) at full size, with its report.
#   FAULT_POINTS  seeded SIGKILL points (default 28; `make test` runs 8)
#   FAULT_SEED    their seed (default 20261124: the same points every run)
#   FAULT_REPORT  where the report goes (default faults-report.md)
set -euo pipefail
cd "$(dirname "$0")/.."

points=${FAULT_POINTS:-28}
seed=${FAULT_SEED:-20261124}
report=${FAULT_REPORT:-faults-report.md}
case "$report" in /*) ;; *) report="$PWD/$report" ;; esac

{
	echo "# dirsync fault-injection report"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(go version | cut -d' ' -f3), seed $seed, $points SIGKILL points."
	echo "Each case ends with a completed sync and the convergence check (recipients = directory under the policy,"
	echo "no duplicate or stray, read models = rebuild from the stream, every event once, summaries = stored events)."
	echo "Recovery is the time from the restart (or the end of the fault) to the next completed sync."
	echo
	echo "| case | seed/point | fault | at the fault | recovery | events checked |"
	echo "|---|---|---|---|---|---|"
} > "$report"

echo ">> fault-injection suite: $points SIGKILL points, seed $seed (report: $report)"
start=$(date +%s)
set +e
DIRSYNC_FAULTS_POINTS=$points DIRSYNC_FAULTS_SEED=$seed DIRSYNC_FAULTS_REPORT=$report \
	DIRSYNC_FAULTS_FULL=1 go test -count=1 -timeout 40m -run '^(TestReplica|TestFault|TestDurability|TestDiskFull|TestSecondDaemonRefused|TestAPISlowClients|TestStalledProjectorDetected|TestConcurrentConnectionTests|TestFailedSavingTagsRepaired|TestConsumerCredential|TestSyncOptionsBounded|TestUpdateExistingFalseTakeover|TestConnectorRenameAndRetire|TestConnectorRenamedFrom)' -v ./daemon/e2e | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|_test.go:[0-9]+:|panic' | grep -v '=== RUN'
rc=${PIPESTATUS[0]}
set -e
{
	echo
	echo "Suite wall time: $(( $(date +%s) - start )) s; go test exit status $rc."
} >> "$report"
echo
cat "$report"
exit "$rc"
