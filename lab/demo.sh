#!/usr/bin/env bash
# A real replication on a fresh machine, with nothing prepared by hand: installs what it needs,
# brings up the lab (two Debian hosts with sshd in network namespaces), replicates the origin's
# whole root (btrfs /, xfs /srv/data, /u02 excluded) to the target, shows the plan, the sync,
# a second plan with nothing to do, and the status. `lab.sh down` removes the lab afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "$(id -u)" == 0 ]] || { echo "demo: run as root (the lab uses network namespaces and loop devices)" >&2; exit 1; }
bash lab/lab.sh deps
command -v rsync >/dev/null || apt-get install -y -qq rsync openssh-server acl attr >/dev/null
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
bash lab/lab.sh up
state="${RMM_LAB_DIR:-/run/rmm-lab}"
spec="$state/demo.yaml"
sed -e "s#@STATE@#$state#g" lab/demo.yaml > "$spec"
rmm() { node dist/cli/main.js "$@"; }
echo; echo "== rmm plan -f $spec"; rmm plan -f "$spec" || [[ $? == 3 ]]
echo; echo "== rmm apply -f $spec --yes"; rmm apply -f "$spec" --yes
echo; echo "== rmm plan again: nothing to do"; rmm plan -f "$spec"
echo; echo "== rmm status"; rmm status -f "$spec"
echo; echo "The replica is on the target at /srv/replicas/origin-copy/current (see: bash lab/lab.sh exec target -- ls /srv/replicas/origin-copy/current)."
echo "Remove the lab with: bash lab/lab.sh down"
