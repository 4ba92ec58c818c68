#!/usr/bin/env bash
# rmm test lab: real Linux "servers" for replication tests, made of a network namespace, loop-backed
# filesystems holding a Debian root, and an sshd chrooted into that root.
#
#   lab.sh deps                 apt-get install what the lab needs on this machine
#   lab.sh image                build (or reuse) the cached Debian rootfs tarball; prints its path
#   lab.sh up                   tear down leftovers, then create the bridge and the hosts
#   lab.sh down                 remove everything of the lab (idempotent, needs no state files)
#   lab.sh cut | join           partition origin from target (both still reach the rmm host) / undo
#   lab.sh status               print what is up
#   lab.sh exec HOST -- CMD...  run CMD inside HOST (its netns, hostname, mounts and chroot)
#   lab.sh ssh [USER@]HOST [CMD...]   ssh into HOST with the lab's client key
#
# Environment: RMM_LAB_DIR (state, default /run/rmm-lab), RMM_LAB_CACHE (image cache, default
# /var/cache/rmm-lab), RMM_LAB_DISKS (loop backing files, default $RMM_LAB_DIR/disks, or
# /var/tmp/rmm-lab when $RMM_LAB_DIR is on tmpfs), RMM_LAB_MIRROR (default: from apt's sources),
# RMM_LAB_ORIGIN_VOLUMES / RMM_LAB_TARGET_VOLUMES (a host's volumes, "MOUNTPOINT:FSTYPE:SIZE ...",
# root first; default "/:btrfs:3G /srv/data:xfs:512M /u02:xfs:300M" and "/:xfs:2G /srv/replicas:xfs:4G /srv/snapshots:btrfs:3G").
set -euo pipefail

# Debian packages this script needs on the machine running the lab (CI: `lab.sh deps`).
LAB_HOST_PACKAGES="bash coreutils util-linux mount tar zstd debootstrap iproute2 btrfs-progs xfsprogs openssh-client"

IMAGE_SUITE="bookworm"
IMAGE_VARIANT="minbase"
IMAGE_PACKAGES="openssh-server,rsync,sudo,btrfs-progs,xfsprogs,acl,attr,util-linux,iproute2,procps,e2fsprogs,findutils,hostname,less"

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHROOT_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Several labs can run side by side (tests and benchmarks at once): RMM_LAB_ID 0-9 picks the
# names, the subnet 198.18.ID.0/24 and the default state dir. Lab 0 keeps the plain names.
LAB_ID="${RMM_LAB_ID:-0}"
[[ "$LAB_ID" =~ ^[0-9]$ ]] || { echo "lab.sh: error: RMM_LAB_ID must be a digit 0-9, not '$LAB_ID'" >&2; exit 2; }
LAB_SUFFIX="${LAB_ID/#0/}"
STATE="${RMM_LAB_DIR:-/run/rmm-lab$LAB_SUFFIX}"
STATE="${STATE%/}"
CACHE="${RMM_LAB_CACHE:-/var/cache/rmm-lab}"
CACHE="${CACHE%/}"

BRIDGE="rmmlab$LAB_ID"
RMM_ADDRESS="198.18.$LAB_ID.1"
NET_PREFIX_LEN=24
NETNS_PREFIX="rmmlab$LAB_SUFFIX-"
SSH_PORT=22
LAB_USER="rmm"
LAB_UID=1000

HOSTS=(origin target)
declare -A HOST_ADDRESS=([origin]="198.18.$LAB_ID.10" [target]="198.18.$LAB_ID.20")
# Volumes per host, "MOUNTPOINT:FSTYPE:SIZE", the root filesystem first. RMM_LAB_ORIGIN_VOLUMES and
# RMM_LAB_TARGET_VOLUMES replace a host's list (bigger labs for benchmarks; loop files are sparse).
declare -A HOST_VOLUMES=(
  [origin]="${RMM_LAB_ORIGIN_VOLUMES:-/:btrfs:3G /srv/data:xfs:512M /u02:xfs:300M}"
  [target]="${RMM_LAB_TARGET_VOLUMES:-/:xfs:2G /srv/replicas:xfs:4G /srv/snapshots:btrfs:3G}"
)
for _h in "${!HOST_VOLUMES[@]}"; do
  [[ "${HOST_VOLUMES[$_h]}" =~ ^/:(btrfs|xfs):[0-9]+[KMGT]?( +/[^ :]+:(btrfs|xfs):[0-9]+[KMGT]?)*$ ]] ||
    { echo "lab.sh: error: volumes of $_h must be '/:FSTYPE:SIZE [MOUNTPOINT:FSTYPE:SIZE ...]', not '${HOST_VOLUMES[$_h]}'" >&2; exit 2; }
done

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf 'lab.sh: error: %s\n' "$*" >&2; exit 1; }

check_paths() {
  [[ "$STATE" == /?* ]] || die "RMM_LAB_DIR must be an absolute path other than /: '$STATE'"
  [[ "$CACHE" == /?* ]] || die "RMM_LAB_CACHE must be an absolute path other than /: '$CACHE'"
}

need_root() { [[ "$(id -u)" == 0 ]] || die "the lab needs root (network namespaces, loop devices, mounts)"; }

# Loop backing files must live on a disk, not on a small tmpfs.
disks_dir() {
  if [[ -n "${RMM_LAB_DISKS:-}" ]]; then
    printf '%s\n' "${RMM_LAB_DISKS%/}"
    return
  fi
  local probe="$STATE"
  while [[ ! -e "$probe" ]]; do probe="$(dirname "$probe")"; done
  case "$(stat -f -c %T "$probe")" in
    tmpfs | ramfs) printf '/var/tmp/rmm-lab\n' ;;
    *) printf '%s/disks\n' "$STATE" ;;
  esac
}

host_root() { printf '%s/hosts/%s/root\n' "$STATE" "$1"; }
host_dir() { printf '%s/hosts/%s\n' "$STATE" "$1"; }
host_netns() { printf '%s%s\n' "$NETNS_PREFIX" "$1"; }
host_veth() { printf '%s%s\n' "$NETNS_PREFIX" "$1"; } # root-namespace end of the host's veth
volume_name() { local mp="$1"; [[ "$mp" == / ]] && { echo root; return; }; mp="${mp#/}"; echo "${mp//\//-}"; }

is_known_host() {
  local h
  for h in "${HOSTS[@]}"; do [[ "$h" == "$1" ]] && return 0; done
  return 1
}

# Serialise commands that change the lab; sshd must not inherit these descriptors.
lock_lab() {
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  flock -w 900 9 || die "another lab.sh holds $STATE.lock"
}

# ---------------------------------------------------------------------------------------- deps

cmd_deps() {
  need_root
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $LAB_HOST_PACKAGES
}

ensure_tool() { # TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  log "installing $2 (for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2; }
}

# --------------------------------------------------------------------------------------- image

# debian_mirror: in lib.sh.
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# The image recipe: what debootstrap installs and how the tree is cleaned. Its text is hashed into
# the cache file name, so editing it builds a new image.
build_rootfs() { # DIR MIRROR
  local dir="$1" mirror="$2"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant="$IMAGE_VARIANT" --include="$IMAGE_PACKAGES" \
    "$IMAGE_SUITE" "$dir" "$mirror"
  chroot "$dir" apt-get clean
  # Every host gets its own host keys and machine id; /dev is a tmpfs on a running host; the
  # build machine's resolver means nothing in the lab.
  rm -f "$dir"/etc/ssh/ssh_host_*
  : >"$dir/etc/machine-id"
  : >"$dir/etc/resolv.conf"
  rm -rf "${dir:?}"/dev/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
    "$dir"/var/cache/debconf/*-old "$dir"/var/log/*.log "$dir"/var/log/apt/*
  mkdir -p "$dir/var/lib/apt/lists/partial"
}

image_recipe() {
  printf 'suite=%s\nvariant=%s\npackages=%s\nmirror=%s\n' \
    "$IMAGE_SUITE" "$IMAGE_VARIANT" "$IMAGE_PACKAGES" "$MIRROR"
  declare -f build_rootfs
}

image_hash() { image_recipe | sha256sum | cut -c1-16; }

# Sets IMAGE to the cached tarball's path, building it first when missing.
ensure_image() {
  local hash ext f build
  MIRROR="$(debian_mirror)"
  hash="$(image_hash)"
  for f in "$CACHE/rootfs-$hash.tar.zst" "$CACHE/rootfs-$hash.tar.gz"; do
    if [[ -f "$f" ]]; then
      IMAGE="$f"
      log "image: cached $IMAGE"
      return
    fi
  done
  ensure_tool debootstrap debootstrap
  ensure_tool zstd zstd || true
  if command -v zstd >/dev/null 2>&1; then ext=zst; else ext=gz; fi

  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock -w 1800 8 || die "another lab.sh is building an image ($CACHE/.lock)"
  if [[ -f "$CACHE/rootfs-$hash.tar.$ext" ]]; then # built while we waited
    IMAGE="$CACHE/rootfs-$hash.tar.$ext"
    log "image: built by another lab.sh: $IMAGE"
    exec 8>&-
    return
  fi
  cleanup_builds
  build="$CACHE/build.$$"
  mkdir -p "$build/rootfs"
  log "image: debootstrap $IMAGE_SUITE ($IMAGE_VARIANT) from $MIRROR, log in $CACHE/build.log"
  local started=$SECONDS
  if ! build_rootfs "$build/rootfs" "$MIRROR" >"$CACHE/build.log" 2>&1; then
    tail -n 30 "$CACHE/build.log" >&2
    cleanup_builds
    die "image build failed, see $CACHE/build.log"
  fi
  log "image: packing ($(du -sh "$build/rootfs" | cut -f1) unpacked)"
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$build/rootfs" -caf "$build/rootfs.tar.$ext" .
  mv "$build/rootfs.tar.$ext" "$CACHE/rootfs-$hash.tar.$ext"
  cleanup_builds
  for f in "$CACHE"/rootfs-*.tar.*; do # images of older recipes
    [[ "$f" == "$CACHE/rootfs-$hash.tar.$ext" ]] || rm -f "$f"
  done
  exec 8>&-
  IMAGE="$CACHE/rootfs-$hash.tar.$ext"
  log "image: built $IMAGE ($(du -h "$IMAGE" | cut -f1)) in $((SECONDS - started))s"
}

# Remove half-built images (debootstrap may leave /proc and /sys mounted in them).
cleanup_builds() {
  local d
  for d in "$CACHE"/build.*; do
    [[ -d "$d" ]] || continue
    unmount_under "$d"
    rm -rf --one-file-system "$d"
  done
}

cmd_image() {
  need_root
  check_paths
  ensure_image
  printf '%s\n' "$IMAGE"
}

# ---------------------------------------------------------------------------------------- down

# Mount points below DIR, deepest first (findmnt escapes odd characters as \xNN).
mounts_under() {
  local dir="$1" target
  findmnt -rn -o TARGET | while IFS= read -r target; do
    target="$(printf '%b' "$target")"
    [[ "$target" == "$dir"/* ]] && printf '%s\n' "$target"
  done | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

unmount_under() {
  local dir="$1" target round
  for round in 1 2 3 4 5; do
    local left=0
    while IFS= read -r target; do
      [[ -n "$target" ]] || continue
      left=1
      umount "$target" 2>/dev/null || { [[ $round -ge 3 ]] && umount -l "$target" 2>/dev/null; } || true
    done < <(mounts_under "$dir")
    [[ $left == 0 ]] && return 0
  done
  [[ -z "$(mounts_under "$dir")" ]] || die "could not unmount: $(mounts_under "$dir" | tr '\n' ' ')"
}

# PIDs of processes chrooted (or working, like the tar of a killed `up`) below the lab's host
# roots, or living in a lab network namespace.
lab_pids() {
  local p root cwd ns
  for p in /proc/[0-9]*; do
    root="$(readlink "$p/root" 2>/dev/null)" || continue
    cwd="$(readlink "$p/cwd" 2>/dev/null)" || cwd=""
    [[ "$root" == "$STATE/hosts/"* || "$cwd" == "$STATE/hosts/"* ]] && printf '%s\n' "${p#/proc/}"
  done
  for ns in $(lab_netns); do ip netns pids "$ns" 2>/dev/null || true; done
}

lab_netns() { ip netns list 2>/dev/null | awk -v p="$NETNS_PREFIX" 'index($1, p) == 1 { print $1 }'; }
lab_links() { ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E "^($BRIDGE|$NETNS_PREFIX)" || true; }

# Loop devices whose backing file is under the state or disks directory.
lab_loops() {
  local f back disks
  disks="$(disks_dir)"
  for f in /sys/block/loop*/loop/backing_file; do
    [[ -r "$f" ]] || continue
    back="$(cat "$f" 2>/dev/null)" || continue
    if [[ "$back" == "$STATE/"* || "$back" == "$disks/"* ]]; then
      f="${f#/sys/block/}"
      printf '/dev/%s\n' "${f%%/*}"
    fi
  done
}

kill_lab_processes() {
  local pidfile pid pids
  for pidfile in "$STATE"/hosts/*/sshd.pid; do
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for _ in $(seq 1 50); do
    pids="$(lab_pids | sort -u | grep -vxF -e "$$" -e "$PPID" || true)"
    [[ -z "$pids" ]] && return 0
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  die "processes of the lab survive SIGKILL: $(lab_pids | sort -u | tr '\n' ' ')"
}

# A detached loop device that is still busy (lazily unmounted) goes away when released.
wait_loops_released() {
  for _ in $(seq 1 100); do
    [[ -z "$(lab_loops)" ]] && return 0
    sleep 0.1
  done
  die "loop devices remain: $(lab_loops | tr '\n' ' ')"
}

cmd_down() {
  need_root
  check_paths
  lock_lab
  lab_down
  log "down: nothing of the lab remains"
}

lab_down() {
  local disks ns link dev
  disks="$(disks_dir)"
  kill_lab_processes
  unmount_under "$STATE"
  for dev in $(lab_loops); do losetup -d "$dev" 2>/dev/null || true; done
  for ns in $(lab_netns); do ip netns delete "$ns" 2>/dev/null || true; done
  for link in $(lab_links); do ip link delete "$link" 2>/dev/null || true; done
  [[ -z "$(mounts_under "$STATE")" ]] || die "mounts remain under $STATE"
  rm -rf --one-file-system "$STATE"
  [[ "$disks" == "$STATE"/* ]] || rm -rf --one-file-system "$disks"
  wait_loops_released
  [[ -z "$(lab_netns)" ]] || die "network namespaces remain: $(lab_netns | tr '\n' ' ')"
  [[ -z "$(lab_links)" ]] || die "links remain: $(lab_links | tr '\n' ' ')"
}

# ------------------------------------------------------------------------------------------ up

make_bridge() {
  ip link add "$BRIDGE" type bridge forward_delay 0 stp_state 0
  disable_ipv6 "$BRIDGE"
  ip addr add "$RMM_ADDRESS/$NET_PREFIX_LEN" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

disable_ipv6() { # IFNAME [NETNS]: the lab is IPv4 only; no router solicitations, no DAD delay
  local ns="${2:-}" knob="/proc/sys/net/ipv6/conf/$1/disable_ipv6"
  if [[ -n "$ns" ]]; then
    # shellcheck disable=SC2016 # expanded by the inner sh
    nsenter --net="/run/netns/$ns" sh -c '[ ! -w "$1" ] || echo 1 >"$1"' sh "$knob"
  elif [[ -w "$knob" ]]; then
    echo 1 >"$knob"
  fi
}

make_netns() { # HOST
  local host="$1" ns veth
  ns="$(host_netns "$host")"
  veth="$(host_veth "$host")"
  ip netns add "$ns"
  disable_ipv6 all "$ns"
  disable_ipv6 default "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  disable_ipv6 "$veth"
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "${HOST_ADDRESS[$host]}/$NET_PREFIX_LEN" dev eth0
  ip -n "$ns" link set eth0 up
}

make_volume() { # HOST MOUNTPOINT FSTYPE SIZE
  local host="$1" mp="$2" fstype="$3" size="$4" name file dir
  name="$(volume_name "$mp")"
  file="$DISKS/$host-$name.img"
  dir="$(host_root "$host")${mp%/}"
  truncate -s "$size" "$file"
  case "$fstype" in
    btrfs) mkfs.btrfs -q -f -K -L "$name" "$file" >/dev/null ;;
    xfs) mkfs.xfs -q -f -K -L "${name:0:12}" "$file" ;;
    *) die "unsupported filesystem $fstype" ;;
  esac
  mkdir -p "$dir"
  mount -o loop "$file" "$dir"
}

# The root filesystem with the image in it, then the other volumes on top.
make_filesystems() { # HOST
  local host="$1" root vol mp fstype size first=1
  root="$(host_root "$host")"
  for vol in ${HOST_VOLUMES[$host]}; do
    IFS=: read -r mp fstype size <<<"$vol"
    make_volume "$host" "$mp" "$fstype" "$size"
    if [[ $first == 1 ]]; then
      tar --numeric-owner --xattrs --xattrs-include='*' --acls -xpf "$IMAGE" -C "$root"
      first=0
    fi
  done
}

write_fstab() { # HOST
  local host="$1" root vol mp fstype size uuid
  root="$(host_root "$host")"
  {
    echo "# <file system> <mount point> <type> <options> <dump> <pass>"
    for vol in ${HOST_VOLUMES[$host]}; do
      IFS=: read -r mp fstype size <<<"$vol"
      uuid="$(blkid -s UUID -o value "$(findmnt -n -o SOURCE --target "$root${mp%/}")")"
      printf 'UUID=%s %s %s defaults 0 %s\n' "$uuid" "$mp" "$fstype" "$([[ "$mp" == / ]] && echo 1 || echo 2)"
    done
  } >"$root/etc/fstab"
}

# ifupdown syntax, as on a Debian server (the image has no ifupdown: the file is for rmm's fixups).
write_network_config() { # HOST
  local host="$1"
  mkdir -p "$(host_root "$host")/etc/network/interfaces.d"
  cat >"$(host_root "$host")/etc/network/interfaces" <<EOF
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address ${HOST_ADDRESS[$host]}/$NET_PREFIX_LEN
EOF
}

write_sshd_config() { # HOST
  local host="$1"
  cat >"$(host_root "$host")/etc/ssh/sshd_config" <<EOF
# rmm lab host $host: key authentication only
Port $SSH_PORT
ListenAddress ${HOST_ADDRESS[$host]}
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_rsa_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
LogLevel VERBOSE
MaxStartups 64:30:128
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

install_authorized_key() { # ROOT HOME OWNER
  local root="$1" home="$2" owner="$3"
  install -d -m 0700 -o "$owner" -g "$owner" "$root$home/.ssh"
  install -m 0600 -o "$owner" -g "$owner" "$STATE/id_ed25519.pub" "$root$home/.ssh/authorized_keys"
}

configure_host() { # HOST
  local host="$1" root h t
  root="$(host_root "$host")"
  printf '%s\n' "$host" >"$root/etc/hostname"
  {
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$host"
    printf '%s\trmm\n' "$RMM_ADDRESS"
    for h in "${HOSTS[@]}"; do printf '%s\t%s\n' "${HOST_ADDRESS[$h]}" "$h"; done
  } >"$root/etc/hosts"
  write_fstab "$host"
  write_network_config "$host"
  for t in ed25519 ecdsa rsa; do
    ssh-keygen -q -t "$t" -N '' -C "root@$host" -f "$root/etc/ssh/ssh_host_${t}_key"
  done
  chroot "$root" useradd --create-home --uid "$LAB_UID" --user-group --shell /bin/bash "$LAB_USER"
  # '*': no password, but not locked ('!'), which sshd refuses even for key logins without PAM.
  chroot "$root" usermod -p '*' root
  chroot "$root" usermod -p '*' "$LAB_USER"
  install_authorized_key "$root" /root 0
  install_authorized_key "$root" "/home/$LAB_USER" "$LAB_UID"
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$LAB_USER" >"$root/etc/sudoers.d/$LAB_USER"
  chmod 0440 "$root/etc/sudoers.d/$LAB_USER"
  write_sshd_config "$host"
}

# /proc, a read-only /sys of the host's netns, a small /dev with its own devpts, a tmpfs /run.
mount_api_filesystems() { # HOST
  local host="$1" root dev
  root="$(host_root "$host")"
  mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
  nsenter --net="/run/netns/$(host_netns "$host")" \
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  dev="$root/dev"
  mount -t tmpfs -o nosuid,mode=0755,size=1m dev "$dev"
  mknod -m 0666 "$dev/null" c 1 3
  mknod -m 0666 "$dev/zero" c 1 5
  mknod -m 0666 "$dev/full" c 1 7
  mknod -m 0666 "$dev/random" c 1 8
  mknod -m 0666 "$dev/urandom" c 1 9
  mknod -m 0666 "$dev/tty" c 5 0
  ln -s /proc/self/fd "$dev/fd"
  ln -s /proc/self/fd/0 "$dev/stdin"
  ln -s /proc/self/fd/1 "$dev/stdout"
  ln -s /proc/self/fd/2 "$dev/stderr"
  ln -s pts/ptmx "$dev/ptmx"
  mkdir -m 0755 "$dev/pts"
  mkdir -m 1777 "$dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$dev/pts"
  mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$dev/shm"
  add_block_devices "$host"
  mount -t tmpfs -o nosuid,nodev,mode=0755,size=64m run "$root/run"
  mkdir -m 0755 "$root/run/sshd"
  mkdir -m 1777 "$root/run/lock"
}

# The host's own disks (the loop devices under its volumes), so blkid, lsblk, xfs_info work.
add_block_devices() { # HOST
  local host="$1" root vol mp fstype size source
  root="$(host_root "$host")"
  for vol in ${HOST_VOLUMES[$host]}; do
    IFS=: read -r mp fstype size <<<"$vol"
    source="$(findmnt -n -o SOURCE --mountpoint "$root${mp%/}")"
    [[ -b "$source" && ! -e "$root$source" ]] || continue
    mknod -m 0660 "$root$source" b "$((16#$(stat -c '%t' "$source")))" "$((16#$(stat -c '%T' "$source")))"
    chgrp disk "$root$source" 2>/dev/null || true
  done
}

start_sshd() { # HOST
  local host="$1" dir root
  dir="$(host_dir "$host")"
  root="$(host_root "$host")"
  # ip netns exec gives sshd its own mount namespace; unshare --uts its own hostname.
  # shellcheck disable=SC2016 # expanded by the inner sh
  setsid ip netns exec "$(host_netns "$host")" unshare --uts -- \
    sh -c 'hostname "$1" && exec env -i PATH="$3" LANG=C.UTF-8 chroot "$2" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config' \
    sh "$host" "$root" "$CHROOT_PATH" \
    </dev/null >>"$dir/sshd.log" 2>&1 8>&- 9>&- &
  printf '%s\n' "$!" >"$dir/sshd.pid"
}

wait_for_sshd() { # HOST
  local host="$1" dir pid addr
  dir="$(host_dir "$host")"
  pid="$(cat "$dir/sshd.pid")"
  addr="${HOST_ADDRESS[$host]}"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "sshd of $host exited; $dir/sshd.log:"$'\n'"$(tail -n 20 "$dir/sshd.log")"
    fi
    # shellcheck disable=SC2016 # expanded by the inner bash
    if timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' bash "$addr" "$SSH_PORT" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "sshd of $host does not answer on $addr:$SSH_PORT after 10s; $dir/sshd.log:"$'\n'"$(tail -n 20 "$dir/sshd.log")"
}

write_known_hosts() {
  local host t
  for host in "${HOSTS[@]}"; do
    for t in ed25519 ecdsa rsa; do
      printf '%s %s\n' "${HOST_ADDRESS[$host]}" \
        "$(cut -d' ' -f1,2 "$(host_root "$host")/etc/ssh/ssh_host_${t}_key.pub")"
    done
  done >"$STATE/known_hosts"
}

json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '"%s"' "$s"
}

write_lab_json() {
  local host vol mp fstype size sep="" msep
  {
    printf '{\n  "version": 1,\n'
    printf '  "bridge": %s,\n' "$(json_str "$BRIDGE")"
    printf '  "rmmAddress": %s,\n' "$(json_str "$RMM_ADDRESS")"
    printf '  "stateDir": %s,\n' "$(json_str "$STATE")"
    printf '  "clientKey": %s,\n' "$(json_str "$STATE/id_ed25519")"
    printf '  "knownHosts": %s,\n' "$(json_str "$STATE/known_hosts")"
    printf '  "users": [%s, %s],\n' "$(json_str root)" "$(json_str "$LAB_USER")"
    printf '  "hosts": {'
    for host in "${HOSTS[@]}"; do
      printf '%s\n    %s: {\n' "$sep" "$(json_str "$host")"
      printf '      "address": %s,\n' "$(json_str "${HOST_ADDRESS[$host]}")"
      printf '      "port": %s,\n' "$SSH_PORT"
      printf '      "netns": %s,\n' "$(json_str "$(host_netns "$host")")"
      printf '      "root": %s,\n' "$(json_str "$(host_root "$host")")"
      printf '      "sshdLog": %s,\n' "$(json_str "$(host_dir "$host")/sshd.log")"
      printf '      "mounts": {'
      msep=""
      for vol in ${HOST_VOLUMES[$host]}; do
        IFS=: read -r mp fstype size <<<"$vol"
        printf '%s%s: %s' "$msep" "$(json_str "$mp")" "$(json_str "$fstype")"
        msep=", "
      done
      printf '}\n    }'
      sep=","
    done
    printf '\n  }\n}\n'
  } >"$STATE/lab.json.tmp"
  mv "$STATE/lab.json.tmp" "$STATE/lab.json"
}

cmd_up() {
  need_root
  check_paths
  lock_lab
  local started=$SECONDS host
  lab_down
  ensure_image
  DISKS="$(disks_dir)"
  mkdir -p "$STATE" "$DISKS"
  ssh-keygen -q -t ed25519 -N '' -C "rmm-lab-client" -f "$STATE/id_ed25519"
  make_bridge
  for host in "${HOSTS[@]}"; do
    log "up: $host (${HOST_ADDRESS[$host]})"
    mkdir -p "$(host_dir "$host")"
    make_netns "$host"
    make_filesystems "$host"
    mount_api_filesystems "$host"
    configure_host "$host"
    start_sshd "$host"
  done
  for host in "${HOSTS[@]}"; do wait_for_sshd "$host"; done
  write_known_hosts
  write_lab_json
  printf 'rmm lab up in %ss: %s, rmm host %s; ' "$((SECONDS - started))" "$BRIDGE" "$RMM_ADDRESS"
  for host in "${HOSTS[@]}"; do printf '%s %s; ' "$host" "${HOST_ADDRESS[$host]}"; done
  printf 'state %s/lab.json\n' "$STATE"
}

# ----------------------------------------------------------------------------------- cut, join

# Bridge ports marked "isolated" cannot forward to each other, but still reach the bridge itself
# (198.18.0.1). Packets are dropped, as on a real broken link: connections time out.
set_isolation() { # on|off
  local host
  ip link show "$BRIDGE" >/dev/null 2>&1 || die "the lab is not up (no $BRIDGE)"
  for host in "${HOSTS[@]}"; do
    bridge link set dev "$(host_veth "$host")" isolated "$1"
  done
}

cmd_cut() { need_root; set_isolation on; log "cut: hosts cannot reach each other; all reach $RMM_ADDRESS"; }
cmd_join() { need_root; set_isolation off; log "join: hosts reach each other again"; }

# -------------------------------------------------------------------------------- status, exec

# The pid of HOST's sshd when it is alive and chrooted in the host's root.
sshd_pid() { # HOST
  local pidfile pid
  pidfile="$(host_dir "$1")/sshd.pid"
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ && "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$(host_root "$1")" ]] || return 1
  printf '%s\n' "$pid"
}

cmd_status() {
  local host pid isolated
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    echo "lab: down"
    return 0
  fi
  echo "lab: $BRIDGE $RMM_ADDRESS/$NET_PREFIX_LEN, state $STATE"
  for host in "${HOSTS[@]}"; do
    pid="$(sshd_pid "$host")" || pid="not running"
    isolated="$(bridge -d link show dev "$(host_veth "$host")" 2>/dev/null | grep -o 'isolated on' || true)"
    printf '%s: %s netns %s sshd %s link %s\n' "$host" "${HOST_ADDRESS[$host]}" "$(host_netns "$host")" \
      "$pid" "$([[ -n "$isolated" ]] && echo cut || echo joined)"
    findmnt -rn -o TARGET,FSTYPE,SOURCE -R "$(host_root "$host")" 2>/dev/null | sed 's/^/  /' || true
  done
}

cmd_exec() { # HOST -- CMD...
  local host="${1:-}" pid
  is_known_host "$host" || die "usage: lab.sh exec HOST -- CMD... (HOST: ${HOSTS[*]})"
  shift
  [[ "${1:-}" == -- ]] && shift
  (($#)) || die "usage: lab.sh exec HOST -- CMD..."
  if pid="$(sshd_pid "$host")"; then
    # The same namespaces, hostname and root as an ssh session on the host.
    exec nsenter --target "$pid" --net --uts --mount --root --wd -- env PATH="$CHROOT_PATH" "$@"
  fi
  ip netns list | grep -qw "$(host_netns "$host")" || die "host $host is not up"
  exec ip netns exec "$(host_netns "$host")" chroot "$(host_root "$host")" env PATH="$CHROOT_PATH" "$@"
}

cmd_ssh() { # [USER@]HOST [CMD...]
  local target="${1:-}" user=root host
  shift || true
  host="${target#*@}"
  [[ "$target" == *@* ]] && user="${target%%@*}"
  is_known_host "$host" || die "usage: lab.sh ssh [USER@]HOST [CMD...] (HOST: ${HOSTS[*]})"
  exec ssh -i "$STATE/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$STATE/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -l "$user" "${HOST_ADDRESS[$host]}" "$@"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    deps) cmd_deps ;;
    image) cmd_image ;;
    up) cmd_up ;;
    down) cmd_down ;;
    cut) cmd_cut ;;
    join) cmd_join ;;
    status) cmd_status ;;
    exec) cmd_exec "$@" ;;
    ssh) cmd_ssh "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
