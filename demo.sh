#!/usr/bin/env bash
# The main job on a new machine: build ferry, start local Debian test hosts, run the
# flagship playbook, run it again to show it changes nothing.
set -euo pipefail
cd "$(dirname "$0")"
HOSTS="${FERRY_DEMO_HOSTS:-1}"
export FERRY_LAB_DIR="${FERRY_LAB_DIR:-/tmp/ferry-lab}"

command -v cargo >/dev/null || { echo "demo.sh: cargo is required" >&2; exit 1; }
cargo build --release --quiet
FERRY=target/release/ferry

tests/hosts/lab up "$HOSTS"
INV=inventories/lab/hosts.ini
mkdir -p inventories/lab
cp "$FERRY_LAB_DIR/hosts.ini" "$INV"

start=$(date +%s)
"$FERRY" playbook -i "$INV" playbooks/site.yml
echo "== second run: nothing should change"
"$FERRY" playbook -i "$INV" playbooks/site.yml | tee /tmp/ferry-demo-rerun.txt
grep -q "changed=0" /tmp/ferry-demo-rerun.txt
echo "demo finished in $(( $(date +%s) - start )) s on $HOSTS host(s)"
