#!/bin/sh
# Post-sync hook of examples/cluster-to-one.yaml, run on the landing host after each sync.
# rmm sets RMM_REPLICA, RMM_ORIGIN, RMM_PHASE, RMM_TARGET_HOST and RMM_TARGET_PATH.
set -eu
conf="$RMM_TARGET_PATH/current/etc/app/cluster.conf"
[ -f "$conf" ] || exit 0
# The DR site runs one node: drop the peers so the application starts alone after failover.
sed -i -e 's/^peers=.*/peers=/' -e 's/^quorum=.*/quorum=1/' "$conf"
