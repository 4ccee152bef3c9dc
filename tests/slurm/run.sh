#!/usr/bin/env bash
# The real test of `reproduce --executor slurm` (`cargo xtask slurm-test`).
#
# Installs Debian's Slurm (slurmctld, slurmd, client) and munge if missing, starts a one-node
# cluster on this machine (its own slurm.conf under the work directory, nothing in /etc
# changed but munge's run directory), submits the smoke-scale reproduction to it, waits for
# every job, and checks that the results equal those of a local run of the same plan.
# Needs root (apt-get, the daemons). The cluster is stopped on exit.
#
#   tests/slurm/run.sh [extra `rewind reproduce` options, e.g. --models lenet]
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
work=${REWIND_SLURM_WORK:-$(mktemp -d /tmp/rewind-slurm.XXXXXX)}
mkdir -p "$work"
data=${REWIND_DATA_DIR:-$(cd .. && pwd)/shared/data}
target=${CARGO_TARGET_DIR:-$repo/target}
limit=${REWIND_SLURM_TIMEOUT:-3600}
extra=("$@")
if [ ${#extra[@]} -eq 0 ]; then
    extra=(--models lenet,resnet20 --substitute cifar10=fashion-mnist)
fi
say() { echo "== $*"; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing Slurm and munge from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
slurmctld -V

say "building rewind"
cargo build --quiet -p cli
rewind="$target/debug/rewind"

say "starting munge and a one-node cluster in $work"
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
if ! munge -n </dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c munged
    sleep 1
fi
munge -n </dev/null | unmunge >/dev/null
host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<CONF
ClusterName=rewindtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MaxArraySize=1001
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=rewind Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
stop() {
    [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
    [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
}
trap stop EXIT
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || { echo "the node did not come up ($state)"; tail -20 "$work"/slurm*.log; exit 1; }
sinfo

submit() {
    "$rewind" --data-dir "$data" --no-download reproduce --scale smoke --executor slurm \
        --partition rewind --cpus-per-job 1 --time 01:00:00 \
        --store "$work/store-slurm" --out "$work/report-slurm" "${extra[@]}"
}
wait_for_jobs() {
    local start=$1
    while [ -n "$(squeue -h -o %i)" ]; do
        if [ $(( $(date +%s) - start )) -gt "$limit" ]; then
            echo "jobs still queued after $limit s:"; squeue; exit 1
        fi
        sleep 3
    done
    "$rewind" runs --store "$work/store-slurm" list | tail -1
    if [ ! -f "$work/report-slurm/results.json" ]; then
        echo "the Slurm run wrote no report; job logs:"
        tail -n 30 "$work"/store-slurm/slurm/*/logs/*.out
        exit 1
    fi
}

say "submitting the smoke reproduction to Slurm (${extra[*]})"
start=$(date +%s)
submit | tee "$work/submit.txt"
wait_for_jobs "$start"
echo "Slurm: every job finished in $(( $(date +%s) - start )) s"

say "a crashed job: a run loses its result and last checkpoint, its lock is left by a dead node"
crashed=$(cd "$work/store-slurm" && ls -d train-* | head -1)
cp "$work/store-slurm/$crashed/result.json" "$work/crashed-result.json"
rm "$work/store-slurm/$crashed/result.json"
last=$(ls -d "$work/store-slurm/$crashed"/checkpoints/step-* | tail -1)
rm -r "$last"
echo '{"host":"node-that-crashed","machine":"gone","pid":1,"token":"crashed","job":"7 task 0"}' \
    > "$work/store-slurm/$crashed/lock"
touch -d '10 minutes ago' "$work/store-slurm/$crashed/lock"
mv "$work/report-slurm" "$work/report-slurm-first"
start=$(date +%s)
submit | tee "$work/resubmit.txt"
grep -q "submitted 1 of" "$work/resubmit.txt" \
    || { echo "the resubmission should hold exactly the crashed run"; exit 1; }
wait_for_jobs "$start"
[ ! -e "$work/store-slurm/$crashed/lock" ] || { echo "the stale lock is still there"; exit 1; }
python3 tests/slurm/same_results.py "$work/crashed-result.json" "$work/store-slurm/$crashed/result.json" \
    || { echo "$crashed was recomputed differently"; exit 1; }
echo "resubmitted: $crashed taken over from the dead node's lock, resumed from its remaining checkpoint and recomputed identically in $(( $(date +%s) - start )) s"

say "the same plan locally"
start=$(date +%s)
"$rewind" --data-dir "$data" --no-download reproduce --scale smoke --quiet \
    --store "$work/store-local" --out "$work/report-local" "${extra[@]}"
echo "local: $(( $(date +%s) - start )) s"

say "comparing the results"
python3 tests/slurm/same_results.py "$work/report-slurm/results.json" "$work/report-local/results.json"
say "ok"
