#!/usr/bin/env bash
# rmm test guest: a Debian virtual machine under qemu (software emulation is enough) for what the
# namespace lab cannot do, LVM first of all (device-mapper may not work on the machine itself).
# Its root is ext4 on /dev/vda; /dev/vdb is an LVM physical volume with volume group vg0, a 1 GiB
# xfs logical volume lv_data mounted at /srv/lvdata and about as much free space for snapshots.
#
#   guest.sh deps               apt-get install what the guest needs on this machine
#   guest.sh image              build (or reuse) the cached base disks; prints their directory
#   guest.sh up                 stop leftovers, boot the guest on fresh overlays, wait for ssh
#   guest.sh down               stop the guest, remove its overlays and state (idempotent)
#   guest.sh status             print whether the guest runs
#   guest.sh ssh [USER] [CMD...]  ssh into the guest with the lab's client key (USER: root, rmm;
#                               default root)
#
# The image is built without device-mapper on this machine: debootstrap makes a tree, mkfs.ext4 -d
# turns it into the root disk, and one boot of the guest itself creates the LVM layout and powers
# off. The result is cached read-only in $RMM_LAB_CACHE/guest-<recipe hash>/; every `up` boots
# qcow2 overlays on top of it, so a run never changes the cache.
#
# Environment: RMM_GUEST_DIR (state, default $RMM_LAB_DIR-guest, i.e. /run/rmm-lab-guest: beside the
# namespace lab's state, not in it, as `lab.sh up` and `down` remove all of that), RMM_LAB_CACHE
# (default /var/cache/rmm-lab), RMM_GUEST_PORT (ssh port on 127.0.0.1, default 2222),
# RMM_GUEST_DISKS (overlays, default $RMM_GUEST_DIR, or /var/tmp/rmm-lab-guest_<state path> when
# that is on tmpfs), RMM_GUEST_ACCEL (qemu accelerators, default tcg; e.g. kvm:tcg),
# RMM_GUEST_BOOT_TIMEOUT (seconds to wait for ssh, default 180), RMM_LAB_MIRROR (default: from
# apt's sources).
#
# Network: the guest has qemu user networking with restrict=on (it reaches nothing outside) and
# one forwarded port, 127.0.0.1:$RMM_GUEST_PORT to its sshd.
set -euo pipefail

# Debian packages this script needs on the machine running the guest (CI: `guest.sh deps`).
GUEST_HOST_PACKAGES="bash coreutils util-linux qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client"

IMAGE_SUITE="bookworm"
IMAGE_VARIANT="minbase"
IMAGE_PACKAGES="linux-image-cloud-amd64,systemd-sysv,udev,kmod,ifupdown,lvm2,openssh-server,rsync,sudo,btrfs-progs,xfsprogs,acl,attr,util-linux,iproute2,procps,e2fsprogs,findutils,hostname,less"
ROOT_SIZE="3G"
LVM_DISK_SIZE="2G"
LV_SIZE="1G"
VG_NAME="vg0"
LV_NAME="lv_data"
LV_MOUNT="/srv/lvdata"
LV_FSTYPE="xfs"
GUEST_HOSTNAME="guest"
GUEST_ADDRESS="10.0.2.15" # qemu user networking's guest address, where hostfwd delivers
LAB_USER="rmm"
LAB_UID=1000

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

STATE="${RMM_LAB_DIR:-/run/rmm-lab}"
STATE="${STATE%/}"
GDIR="${RMM_GUEST_DIR:-$STATE-guest}"
GDIR="${GDIR%/}"
CACHE="${RMM_LAB_CACHE:-/var/cache/rmm-lab}"
CACHE="${CACHE%/}"
PORT="${RMM_GUEST_PORT:-2222}"
ACCEL="${RMM_GUEST_ACCEL:-tcg}"
BOOT_TIMEOUT="${RMM_GUEST_BOOT_TIMEOUT:-180}"
BUILD_BOOT_TIMEOUT=900
MEMORY=1024
CPUS=2

log() { printf '[guest] %s\n' "$*" >&2; }
die() { printf 'guest.sh: error: %s\n' "$*" >&2; exit 1; }

check_paths() {
  [[ "$GDIR" == /?* ]] || die "RMM_GUEST_DIR (or RMM_LAB_DIR) must be an absolute path other than /: '$GDIR'"
  [[ "$CACHE" == /?* ]] || die "RMM_LAB_CACHE must be an absolute path other than /: '$CACHE'"
  if ! [[ "$PORT" =~ ^[0-9]{1,5}$ ]] || ((PORT < 1 || PORT > 65535)); then
    die "RMM_GUEST_PORT must be a TCP port: '$PORT'"
  fi
  [[ "$BOOT_TIMEOUT" =~ ^[0-9]+$ ]] || die "RMM_GUEST_BOOT_TIMEOUT must be a number of seconds: '$BOOT_TIMEOUT'"
}

need_root() { [[ "$(id -u)" == 0 ]] || die "the guest needs root (debootstrap, chroot)"; }

# Overlays grow with what the guest writes: keep them on a disk, not on a small tmpfs.
disks_dir() {
  if [[ -n "${RMM_GUEST_DISKS:-}" ]]; then
    printf '%s\n' "${RMM_GUEST_DISKS%/}"
    return
  fi
  local probe="$GDIR"
  while [[ ! -e "$probe" ]]; do probe="$(dirname "$probe")"; done
  case "$(stat -f -c %T "$probe")" in
    tmpfs | ramfs) printf '/var/tmp/rmm-lab-guest%s\n' "${GDIR//\//_}" ;;
    *) printf '%s\n' "$GDIR" ;;
  esac
}

# Serialise up/down of this guest (not with lab.sh's lock: the namespace lab and the guest are
# independent).
lock_guest() {
  mkdir -p "$(dirname "$GDIR")"
  exec 9>"$GDIR.lock"
  flock -w 1800 9 || die "another guest.sh holds $GDIR.lock"
}

# ---------------------------------------------------------------------------------------- deps

cmd_deps() {
  need_root
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $GUEST_HOST_PACKAGES
}

ensure_tool() { # TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  log "installing $2 (for $1)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >&2; }
}

ensure_tools() {
  ensure_tool qemu-system-x86_64 qemu-system-x86
  ensure_tool qemu-img qemu-utils
  ensure_tool ssh-keygen openssh-client
  ensure_tool ssh openssh-client
  ensure_tool mkfs.ext4 e2fsprogs
  ensure_tool debugfs e2fsprogs
  ensure_tool flock util-linux
}

# --------------------------------------------------------------------------------------- image

# debian_mirror: in lib.sh.
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Runs inside the guest at boot (rmm-guest-keys.service, before sshd): installs the client key
# that `up` passes on the kernel command line as rmm.authorized_key=<base64 of an ed25519 key>.
guest_keys_script() {
  cat <<'EOF'
#!/bin/sh
set -eu
key=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in rmm.authorized_key=*) key="${arg#rmm.authorized_key=}" ;; esac
done
[ -n "$key" ] || exit 0
for user in root @LAB_USER@; do
  home="$(getent passwd "$user" | cut -d: -f6)"
  install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
  printf 'ssh-ed25519 %s rmm-lab-client\n' "$key" >"$home/.ssh/authorized_keys.new"
  chown "$user:$user" "$home/.ssh/authorized_keys.new"
  chmod 0600 "$home/.ssh/authorized_keys.new"
  mv -f "$home/.ssh/authorized_keys.new" "$home/.ssh/authorized_keys"
done
EOF
}

# Runs inside the guest once, on the image build's boot (rmm.prepare on the kernel command line):
# the LVM layout on /dev/vdb, then power off. Its last step is the marker the build checks.
guest_prepare_script() {
  cat <<'EOF'
#!/bin/sh
set -eux
disk=/dev/vdb
udevadm settle
pvcreate -y "$disk"
vgcreate -y @VG@ "$disk"
lvcreate -y -W y -Z y -L @LV_SIZE@ -n @LV@ @VG@
mkfs.@FSTYPE@ -q -L lvdata /dev/mapper/@VG@-@LV_DM@
mkdir -p @MOUNT@
printf '/dev/mapper/%s %s %s defaults 0 2\n' @VG@-@LV_DM@ @MOUNT@ @FSTYPE@ >>/etc/fstab
systemctl daemon-reload
mount @MOUNT@
printf 'rmm test guest: LVM logical volume @VG@/@LV@\n' >@MOUNT@/README
vgs
lvs
findmnt @MOUNT@
sync
touch /etc/rmm-guest-prepared
echo "rmm-guest-prepare: done" >/dev/console
EOF
}

write_unit_files() { # ROOT
  local root="$1"
  cat >"$root/etc/systemd/system/rmm-guest-keys.service" <<'EOF'
[Unit]
Description=rmm test guest: client key from the kernel command line
After=local-fs.target
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rmm-guest-keys
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
RequiredBy=ssh.service
EOF
  # Not enabled: the build's boot asks for it with systemd.wants= on the kernel command line.
  cat >"$root/etc/systemd/system/rmm-guest-prepare.service" <<'EOF'
[Unit]
Description=rmm test guest: create the LVM layout on /dev/vdb, then power off
ConditionKernelCommandLine=rmm.prepare
ConditionPathExists=!/etc/rmm-guest-prepared
After=local-fs.target systemd-udev-trigger.service
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rmm-guest-prepare
StandardOutput=journal+console
StandardError=journal+console
EOF
}

write_sshd_config() { # ROOT
  cat >"$1/etc/ssh/sshd_config" <<'EOF'
# rmm test guest: key authentication only
Port 22
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

# The guest's configuration, written into the debootstrapped tree.
configure_tree() { # ROOT ROOT_UUID
  local root="$1" uuid="$2" t unit
  printf '%s\n' "$GUEST_HOSTNAME" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$GUEST_HOSTNAME" >"$root/etc/hosts"
  printf '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=%s / ext4 errors=remount-ro 0 1\n' \
    "$uuid" >"$root/etc/fstab"
  # No gateway: user networking with restrict=on reaches nothing anyway, and nothing should try.
  cat >"$root/etc/network/interfaces" <<EOF
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address $GUEST_ADDRESS/24
EOF
  : >"$root/etc/resolv.conf"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
  echo >>"$root/etc/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  for t in ed25519 ecdsa rsa; do
    ssh-keygen -q -t "$t" -N '' -C "root@$GUEST_HOSTNAME" -f "$root/etc/ssh/ssh_host_${t}_key"
  done
  write_sshd_config "$root"
  chroot "$root" useradd --create-home --uid "$LAB_UID" --user-group --shell /bin/bash "$LAB_USER"
  # '*': no password, but not locked ('!'), which sshd refuses even for key logins without PAM.
  chroot "$root" usermod -p '*' root
  chroot "$root" usermod -p '*' "$LAB_USER"
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$LAB_USER" >"$root/etc/sudoers.d/$LAB_USER"
  chmod 0440 "$root/etc/sudoers.d/$LAB_USER"
  guest_keys_script | sed "s/@LAB_USER@/$LAB_USER/g" >"$root/usr/local/sbin/rmm-guest-keys"
  guest_prepare_script | sed -e "s/@VG@/$VG_NAME/g" -e "s/@LV@/$LV_NAME/g" -e "s/@LV_DM@/${LV_NAME//-/--}/g" \
    -e "s/@LV_SIZE@/$LV_SIZE/g" -e "s#@MOUNT@#$LV_MOUNT#g" -e "s/@FSTYPE@/$LV_FSTYPE/g" \
    >"$root/usr/local/sbin/rmm-guest-prepare"
  chmod 0755 "$root/usr/local/sbin/rmm-guest-keys" "$root/usr/local/sbin/rmm-guest-prepare"
  write_unit_files "$root"
  chroot "$root" systemctl enable rmm-guest-keys.service
  # Nothing periodic or interactive on a short-lived test machine.
  # ifupdown-pre waits for udev to settle, for interfaces that appear late or are renamed; here
  # eth0 exists before systemd starts (virtio_net is in the initramfs, net.ifnames=0).
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-firstboot.service ifupdown-pre.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/rmm-guest.conf"
  # A small initramfs: the guest's disks are virtio, its root ext4 (the kernel is Debian's cloud
  # flavour, made for virtual machines).
  printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/rmm-guest"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >>"$root/etc/initramfs-tools/modules"
  chroot "$root" update-initramfs -u -k all
}

# The image recipe: debootstrap, then the configuration. Its text is hashed into the cache
# directory's name, so editing it builds a new image.
build_rootfs() { # DIR MIRROR ROOT_UUID
  local dir="$1" mirror="$2" uuid="$3"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant="$IMAGE_VARIANT" --include="$IMAGE_PACKAGES" \
    "$IMAGE_SUITE" "$dir" "$mirror"
  mount -t proc proc "$dir/proc"
  configure_tree "$dir" "$uuid" || { umount "$dir/proc"; return 1; }
  umount "$dir/proc"
  chroot "$dir" apt-get clean
  rm -rf "${dir:?}"/dev/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
    "$dir"/var/cache/debconf/*-old "$dir"/var/log/*.log "$dir"/var/log/apt/*
  mkdir -p "$dir/var/lib/apt/lists/partial"
}

# Root disk from the tree (no mount needed), an empty LVM disk, then one boot that prepares it.
build_disks() { # BUILD_DIR ROOT_UUID
  local build="$1" uuid="$2" kernel initrd t accel
  kernel="$(find "$build/rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
  initrd="$(find "$build/rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)"
  [[ -f "$kernel" && -f "$initrd" ]] || die "no kernel or initrd in $build/rootfs/boot"
  cp "$kernel" "$build/vmlinuz"
  cp "$initrd" "$build/initrd.img"
  for t in ed25519 ecdsa rsa; do cut -d' ' -f1,2 "$build/rootfs/etc/ssh/ssh_host_${t}_key.pub"; done >"$build/host_keys"
  printf '%s\n' "$uuid" >"$build/root_uuid"
  truncate -s "$ROOT_SIZE" "$build/root.raw"
  mkfs.ext4 -q -F -L rmm-root -U "$uuid" -d "$build/rootfs" "$build/root.raw"
  rm -rf --one-file-system "$build/rootfs"
  truncate -s "$LVM_DISK_SIZE" "$build/lvm.raw"
  log "image: first boot creates the LVM layout (serial log $build/prepare.log)"
  mapfile -t accel < <(accel_args)
  timeout "$BUILD_BOOT_TIMEOUT" qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" \
    -name rmm-guest-build,process=rmm-guest-build \
    -kernel "$build/vmlinuz" -initrd "$build/initrd.img" \
    -append "$(kernel_cmdline "$uuid") rmm.prepare systemd.wants=rmm-guest-prepare.service" \
    -drive "file=$build/root.raw,format=raw,if=virtio,cache=writeback" \
    -drive "file=$build/lvm.raw,format=raw,if=virtio,cache=writeback" \
    -netdev user,id=n0,restrict=on,ipv6=off -device virtio-net-pci,netdev=n0 \
    -serial "file:$build/prepare.log" 8>&- 9>&- ||
    { tail -n 40 "$build/prepare.log" >&2; die "the preparing boot failed or timed out"; }
  debugfs -R 'stat /etc/rmm-guest-prepared' "$build/root.raw" 2>/dev/null | grep -q '^Inode:' ||
    { tail -n 40 "$build/prepare.log" >&2; die "the preparing boot did not finish (see $build/prepare.log)"; }
  # A clean power off leaves the root filesystem marked clean (xfs on the LV is unmounted before).
  dumpe2fs -h "$build/root.raw" 2>/dev/null | grep -q '^Filesystem state: *clean$' ||
    { tail -n 40 "$build/prepare.log" >&2; die "the preparing boot did not power off cleanly (see $build/prepare.log)"; }
  qemu-img convert -O qcow2 "$build/root.raw" "$build/root.qcow2"
  qemu-img convert -O qcow2 "$build/lvm.raw" "$build/lvm.qcow2"
  rm -f "$build/root.raw" "$build/lvm.raw"
  chmod 0444 "$build"/root.qcow2 "$build"/lvm.qcow2 "$build"/vmlinuz "$build"/initrd.img "$build"/host_keys "$build"/root_uuid
}

# Everything that decides what the image is: its hash names the cache directory.
image_recipe() {
  printf 'suite=%s\nvariant=%s\npackages=%s\nmirror=%s\n' "$IMAGE_SUITE" "$IMAGE_VARIANT" "$IMAGE_PACKAGES" "$MIRROR"
  printf 'root=%s lvm=%s lv=%s/%s:%s:%s:%s host=%s user=%s:%s address=%s\n' "$ROOT_SIZE" "$LVM_DISK_SIZE" \
    "$VG_NAME" "$LV_NAME" "$LV_SIZE" "$LV_FSTYPE" "$LV_MOUNT" "$GUEST_HOSTNAME" "$LAB_USER" "$LAB_UID" "$GUEST_ADDRESS"
  declare -f guest_keys_script guest_prepare_script write_unit_files write_sshd_config configure_tree \
    build_rootfs build_disks kernel_cmdline
  printf '%s\n' "${QEMU_COMMON[@]}"
}

image_hash() { image_recipe | sha256sum | cut -c1-16; }

# Sets IMAGE to the cached image directory, building it first when missing.
ensure_image() {
  local hash build uuid d
  MIRROR="$(debian_mirror)"
  hash="$(image_hash)"
  IMAGE="$CACHE/guest-$hash"
  if [[ -f "$IMAGE/complete" ]]; then
    log "image: cached $IMAGE"
    return
  fi
  ensure_tools
  ensure_tool debootstrap debootstrap
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.guest.lock"
  flock -w 3600 8 || die "another guest.sh is building an image ($CACHE/.guest.lock)"
  if [[ -f "$IMAGE/complete" ]]; then # built while we waited
    log "image: built by another guest.sh: $IMAGE"
    exec 8>&-
    return
  fi
  cleanup_builds
  build="$CACHE/guest-build.$$"
  mkdir -p "$build/rootfs"
  uuid="$(cat /proc/sys/kernel/random/uuid)"
  log "image: debootstrap $IMAGE_SUITE ($IMAGE_VARIANT) from $MIRROR, log in $CACHE/guest-build.log"
  local started=$SECONDS
  if ! build_rootfs "$build/rootfs" "$MIRROR" "$uuid" >"$CACHE/guest-build.log" 2>&1; then
    tail -n 30 "$CACHE/guest-build.log" >&2
    cleanup_builds
    die "image build failed, see $CACHE/guest-build.log"
  fi
  log "image: root disk ($(du -sh "$build/rootfs" | cut -f1) of files) after $((SECONDS - started))s"
  if ! (build_disks "$build" "$uuid"); then
    cp -f "$build/prepare.log" "$CACHE/guest-prepare.log" 2>/dev/null || true
    cleanup_builds
    die "image build failed (serial log of the preparing boot: $CACHE/guest-prepare.log)"
  fi
  mv -f "$build/prepare.log" "$CACHE/guest-prepare.log"
  touch "$build/complete"
  rm -rf --one-file-system "$IMAGE"
  mv "$build" "$IMAGE"
  for d in "$CACHE"/guest-*/; do # images of older recipes
    d="${d%/}"
    [[ "$d" == "$IMAGE" || ! -f "$d/complete" ]] || rm -rf --one-file-system "$d"
  done
  exec 8>&-
  log "image: built $IMAGE ($(du -sh "$IMAGE" | cut -f1)) in $((SECONDS - started))s"
}

# Remove half-built images: stop a preparing boot left running, unmount what debootstrap left.
cleanup_builds() {
  local d target
  for d in "$CACHE"/guest-build.*; do
    [[ -d "$d" ]] || continue
    kill_qemu_naming "$d/"
    findmnt -rn -o TARGET | while IFS= read -r target; do
      target="$(printf '%b' "$target")"
      [[ "$target" == "$d"/* ]] && printf '%s\n' "$target"
    done | sort -r | while IFS= read -r target; do umount -l "$target" 2>/dev/null || true; done
    rm -rf --one-file-system "$d"
  done
}

cmd_image() {
  need_root
  check_paths
  QEMU_COMMON_init
  ensure_image
  printf '%s\n' "$IMAGE"
}

# ------------------------------------------------------------------------------------ machines

kernel_cmdline() { # ROOT_UUID
  printf 'root=UUID=%s rw console=ttyS0,115200 net.ifnames=0 panic=-1 quiet' "$1"
}

# qemu options of every boot (build and up). Part of the recipe except the accelerator.
QEMU_COMMON_init() {
  QEMU_COMMON=(-machine q35 -cpu max -smp "$CPUS" -m "$MEMORY" -nodefaults -no-user-config -display none
    -no-reboot -device virtio-rng-pci)
}

accel_args() {
  local a out=()
  IFS=: read -r -a accels <<<"$ACCEL"
  for a in "${accels[@]}"; do out+=(-accel "$a"); done
  printf '%s\n' "${out[@]}"
}

# PID's arguments, space-separated (builtins only: this runs for every process, many times).
proc_cmdline() { # PID
  local args
  mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || return 1
  printf '%s\n' "${args[*]}"
}

# PIDs of qemu processes whose command line contains TEXT (a path of ours).
qemu_pids_naming() { # TEXT
  local p args cmd
  for p in /proc/[0-9]*; do
    mapfile -d '' -t args 2>/dev/null <"$p/cmdline" || continue
    cmd="${args[*]}"
    [[ "$cmd" == *qemu-system* && "$cmd" == *"$1"* ]] && printf '%s\n' "${p#/proc/}"
  done
  return 0
}

# Whether PID still runs: a process that exited is a zombie until its parent (often pid 1, which
# may reap lazily) waits for it, but by then it has closed its files and sockets.
pid_running() { # PID
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# Stop the qemu processes naming TEXT: SIGTERM, then SIGKILL after 5 s; wait until they are gone.
kill_qemu_naming() { # TEXT
  local pids pid left round
  pids="$(qemu_pids_naming "$1")"
  [[ -n "$pids" ]] || return 0
  # shellcheck disable=SC2086 # a list of pids
  kill -TERM $pids 2>/dev/null || true
  for round in $(seq 1 100); do
    left=""
    for pid in $pids; do pid_running "$pid" && left+="$pid "; done
    [[ -z "$left" ]] && return 0
    # shellcheck disable=SC2086 # a list of pids
    ((round == 50)) && kill -KILL $left 2>/dev/null
    sleep 0.1
  done
  die "qemu processes survive SIGKILL: $left"
}

# ---------------------------------------------------------------------------------------- down

guest_down() {
  local disks pid
  disks="$(disks_dir)"
  if pid="$(guest_pid)"; then kill -TERM "$pid" 2>/dev/null || true; fi
  kill_qemu_naming "$disks/root.qcow2"
  # Only the files guest.sh makes: RMM_GUEST_DIR may be a directory someone else also uses.
  rm -f "$GDIR"/{guest.json,guest.json.tmp,id_ed25519,id_ed25519.pub,known_hosts,qemu.pid,serial.log} \
    "$disks"/{root,lvm}.qcow2
  rmdir "$disks" 2>/dev/null || true
  rmdir "$GDIR" 2>/dev/null || true
}

cmd_down() {
  need_root
  check_paths
  lock_guest
  local started=$SECONDS
  guest_down
  log "down: no guest remains ($((SECONDS - started))s)"
}

# ------------------------------------------------------------------------------------------ up

json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '"%s"' "$s"
}

write_guest_json() { # PID
  {
    printf '{\n  "version": 1,\n'
    printf '  "address": "127.0.0.1",\n'
    printf '  "port": %s,\n' "$PORT"
    printf '  "stateDir": %s,\n' "$(json_str "$GDIR")"
    printf '  "clientKey": %s,\n' "$(json_str "$GDIR/id_ed25519")"
    printf '  "knownHosts": %s,\n' "$(json_str "$GDIR/known_hosts")"
    printf '  "users": [%s, %s],\n' "$(json_str root)" "$(json_str "$LAB_USER")"
    printf '  "lvm": {"vg": %s, "lv": %s, "mountPoint": %s, "fstype": %s},\n' "$(json_str "$VG_NAME")" \
      "$(json_str "$LV_NAME")" "$(json_str "$LV_MOUNT")" "$(json_str "$LV_FSTYPE")"
    printf '  "image": %s,\n' "$(json_str "$IMAGE")"
    printf '  "serialLog": %s,\n' "$(json_str "$GDIR/serial.log")"
    printf '  "pid": %s\n}\n' "$1"
  } >"$GDIR/guest.json.tmp"
  mv "$GDIR/guest.json.tmp" "$GDIR/guest.json"
}

ssh_opts() {
  printf '%s\n' -F none -i "$GDIR/id_ed25519" -o IdentitiesOnly=yes -o "UserKnownHostsFile=$GDIR/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 \
    -o LogLevel=ERROR -p "$PORT"
}

# The guest's sshd, reached through the forwarded port, sends its banner (qemu itself accepts the
# connection at once, guest up or not), then the client key logs in with the host key checked.
guest_answers() {
  local opts out
  # shellcheck disable=SC2016 # expanded by the inner bash
  if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 4 line <&3 && [[ "$line" == SSH-* ]]' \
    bash "$PORT" 2>/dev/null; then
    PROBE="no ssh banner from 127.0.0.1:$PORT yet"
    return 1
  fi
  mapfile -t opts < <(ssh_opts)
  if ! out="$(timeout 30 ssh "${opts[@]}" -l root 127.0.0.1 true 2>&1 </dev/null)"; then
    PROBE="sshd answers, but ssh root@127.0.0.1 -p $PORT fails: ${out:-no answer in 30 s}"
    return 1
  fi
}

wait_for_guest() { # PID STARTED
  local pid="$1" started="$2" next=10 elapsed
  PROBE="no probe yet"
  while :; do
    elapsed=$((SECONDS - started))
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$GDIR/serial.log" >&2 || true
      die "the guest stopped during boot after ${elapsed}s (serial log above, $GDIR/serial.log)"
    fi
    guest_answers && return 0
    elapsed=$((SECONDS - started))
    if ((elapsed >= BOOT_TIMEOUT)); then
      tail -n 40 "$GDIR/serial.log" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      die "the guest's sshd does not answer on 127.0.0.1:$PORT after ${elapsed}s ($PROBE; serial log above, $GDIR/serial.log)"
    fi
    if ((elapsed >= next)); then
      log "up: waiting for ssh (${elapsed}s: $PROBE)"
      next=$((next + 10))
    fi
    sleep 1
  done
}

start_guest() { # DISKS
  local disks="$1" key accel
  key="$(cut -d' ' -f2 "$GDIR/id_ed25519.pub")"
  mapfile -t accel < <(accel_args)
  qemu-img create -q -f qcow2 -F qcow2 -b "$IMAGE/root.qcow2" "$disks/root.qcow2"
  qemu-img create -q -f qcow2 -F qcow2 -b "$IMAGE/lvm.qcow2" "$disks/lvm.qcow2"
  : >"$GDIR/serial.log"
  qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" \
    -name rmm-guest,process=rmm-guest \
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
    -append "$(kernel_cmdline "$(cat "$IMAGE/root_uuid")") rmm.authorized_key=$key" \
    -drive "file=$disks/root.qcow2,format=qcow2,if=virtio,cache=unsafe,discard=unmap" \
    -drive "file=$disks/lvm.qcow2,format=qcow2,if=virtio,cache=unsafe,discard=unmap" \
    -netdev "user,id=n0,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:$PORT-:22" -device virtio-net-pci,netdev=n0 \
    -serial "file:$GDIR/serial.log" -monitor none \
    -daemonize -pidfile "$GDIR/qemu.pid" 9>&- 8>&- ||
    die "qemu did not start (is 127.0.0.1:$PORT free? set RMM_GUEST_PORT)"
}

cmd_up() {
  need_root
  check_paths
  lock_guest
  local started=$SECONDS disks pid boot t
  ensure_tools
  guest_down
  QEMU_COMMON_init
  ensure_image
  disks="$(disks_dir)"
  mkdir -p "$GDIR" "$disks"
  ssh-keygen -q -t ed25519 -N '' -C "rmm-lab-client" -f "$GDIR/id_ed25519"
  while read -r t; do printf '[127.0.0.1]:%s %s\n' "$PORT" "$t"; done <"$IMAGE/host_keys" >"$GDIR/known_hosts"
  boot=$SECONDS
  log "up: booting ($ACCEL, ${CPUS} cpus, ${MEMORY}M), ssh on 127.0.0.1:$PORT"
  start_guest "$disks"
  pid="$(cat "$GDIR/qemu.pid")"
  wait_for_guest "$pid" "$boot"
  write_guest_json "$pid"
  printf 'rmm guest up in %ss (ssh after %ss of boot): root@127.0.0.1 port %s, LVM %s/%s on %s; state %s/guest.json\n' \
    "$((SECONDS - started))" "$((SECONDS - boot))" "$PORT" "$VG_NAME" "$LV_NAME" "$LV_MOUNT" "$GDIR"
}

# -------------------------------------------------------------------------------- status, ssh

# The pid in the pidfile when it is a qemu running on this guest's overlay.
guest_pid() {
  local pid cmd
  pid="$(cat "$GDIR/qemu.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmd="$(proc_cmdline "$pid")" || return 1
  [[ "$cmd" == *qemu-system* && "$cmd" == *"$(disks_dir)/root.qcow2"* ]] || return 1
  printf '%s\n' "$pid"
}

cmd_status() {
  local pid
  if pid="$(guest_pid)"; then
    echo "guest: up, qemu pid $pid, ssh 127.0.0.1:$(guest_port), state $GDIR"
  else
    echo "guest: down"
  fi
}

guest_port() {
  local p
  p="$(sed -n 's/^  "port": \([0-9]*\),$/\1/p' "$GDIR/guest.json" 2>/dev/null || true)"
  printf '%s\n' "${p:-$PORT}"
}

cmd_ssh() { # [USER] [CMD...]
  local user=root opts
  if [[ "${1:-}" == root || "${1:-}" == "$LAB_USER" ]]; then
    user="$1"
    shift
  fi
  [[ -f "$GDIR/guest.json" ]] || die "the guest is not up (run guest.sh up)"
  PORT="$(guest_port)"
  mapfile -t opts < <(ssh_opts)
  exec ssh "${opts[@]}" -l "$user" 127.0.0.1 "$@"
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
    status) cmd_status ;;
    ssh) cmd_ssh "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
