#!/usr/bin/env bash
# The main job on a new machine: the article's MLOps flow with ferry.
#   1. builds ferry, starts N local Debian test hosts (default 1; FERRY_DEMO_HOSTS=3),
#   2. builds the trainer's base image tarball once (no container registry here),
#   3. prepares the Jenkins test doubles on the hosts (no Jenkins download here),
#   4. runs playbooks/site.yml: java, jenkins, sudoers, firewall, docker, trainer, jobs,
#   5. runs it again and checks that nothing changed,
#   6. prints each host's accuracy (result.txt) and the Jenkins jobs.
# Needs root. The real EEG data is used when ../shared/data/eeg exists (never copied
# into the repo); otherwise the trainer uses synthetic data.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
HOSTS="${FERRY_DEMO_HOSTS:-1}"
export FERRY_LAB_DIR="${FERRY_LAB_DIR:-/tmp/ferry-lab}"
started=$(date +%s)

command -v cargo >/dev/null || { echo "demo.sh: cargo is required" >&2; exit 1; }
# The binary lands under target/<host triple>/ (.cargo/config.toml: a static build).
FERRY=$(cargo build --release --quiet --message-format=json | grep -o '"executable":"[^"]*/ferry"' | cut -d'"' -f4)
[ -x "$FERRY" ] || { echo "$0: no ferry binary after cargo build" >&2; exit 1; }

# Fresh host disks: every demo is a first run on bare Debian hosts.
tests/hosts/lab down >/dev/null 2>&1 || true
tests/hosts/lab up --fresh "$HOSTS"
tests/hosts/trainer-base >/dev/null

INV=inventories/lab
{
    echo "# Written by demo.sh from $FERRY_LAB_DIR/hosts.ini"
    echo "[jenkins]"
    for k in $(seq 1 "$HOSTS"); do echo "lab-$k"; done
    echo
    echo "[jenkins:vars]"
    echo "ansible_user=deploy"
    echo "ansible_ssh_common_args='-F $FERRY_LAB_DIR/ssh_config'"
} >"$INV/hosts"

extra=()
if [ -f "$ROOT/../shared/data/eeg/train.csv" ]; then
    extra=(-e "trainer_data_src=$(cd "$ROOT/../shared/data/eeg" && pwd)")
fi

"$FERRY" playbook -i "$INV" tests/doubles/lab-doubles.yml
t0=$(date +%s)
"$FERRY" playbook -i "$INV" playbooks/site.yml "${extra[@]}" | tee /tmp/ferry-demo-run1.txt
t1=$(date +%s)
echo "== second run: nothing may change"
"$FERRY" playbook -i "$INV" playbooks/site.yml "${extra[@]}" | tee /tmp/ferry-demo-rerun.txt
t2=$(date +%s)
if grep -E "changed=[1-9]|failed=[1-9]|unreachable=[1-9]" /tmp/ferry-demo-rerun.txt; then
    echo "demo.sh: the second run changed something" >&2
    exit 1
fi

echo
echo "== results"
"$FERRY" run jenkins -i "$INV" -b -m shell -a "cat /srv/trainer/result.txt; curl -s -u admin:ferry-demo-admin 'http://127.0.0.1:8080/api/json?tree=jobs%5Bname%5D'; echo" | tee /tmp/ferry-demo-results.txt
# The accuracy the play reported must be what result.txt on each host says.
reported=$(grep -o 'accuracy=[0-9.]*' /tmp/ferry-demo-run1.txt | tail -n 1)
for k in $(seq 1 "$HOSTS"); do
    got=$(grep -A1 "^lab-$k | " /tmp/ferry-demo-results.txt | tail -n 1)
    [ "$got" = "$reported" ] || { echo "demo.sh: lab-$k result.txt says '$got', the play reported '$reported'" >&2; exit 1; }
done
echo "accuracy reported by the play = result.txt on every host: $reported"
echo "site.yml: first run $((t1 - t0)) s, second run $((t2 - t1)) s; demo total $(( $(date +%s) - started )) s on $HOSTS host(s)"
