#!/usr/bin/env bash
# rmm boot lab: virtual machines under qemu (software emulation is enough) for the "boot test" of
# disks targets: copy a real-looking BIOS or UEFI server (the origin) onto the blank disks of a
# helper system (the landing), then boot those disks alone on other virtual hardware (the replica).
#
#   boot.sh deps                 apt-get install what the machines need on this machine
#   boot.sh image [--firmware bios|uefi]  build (or reuse) the cached base disks; prints their
#                                directory (uefi: the UEFI origin's, built after the BIOS image)
#   boot.sh up origin [--firmware bios|uefi]  (re)start the origin on fresh overlays, wait for ssh,
#                                update boot.json; uefi: the UEFI origin (OVMF, GPT, ESP), default bios
#   boot.sh up landing           (re)start the landing on fresh overlays and blank disks, the same way
#   boot.sh up landing --keep-disks  start the powered-off landing again on the disks it had (its
#                                system disk and the replica's disks as the last run left them)
#   boot.sh poweroff NAME        clean shutdown from inside (the guest flushes its disks), then wait
#                                for qemu to exit; the machine's disks stay (boot-replica needs them)
#   boot.sh pause NAME           origin or landing: sync inside, then stop its CPUs (qemu flushes its
#                                disks); boot-replica may then boot the paused landing's disks
#   boot.sh resume NAME          run the paused machine again, wait for ssh
#   boot.sh link-down NAME       its site goes down: its ssh port is no longer forwarded (refused)
#   boot.sh link-up NAME         forwarded again, wait for ssh
#   boot.sh down [NAME|all]      stop the machine(s), remove their disks and state (idempotent;
#                                default all; `down landing` also stops the replica on its disks)
#   boot.sh status               one line per machine: up or down
#   boot.sh ssh NAME [USER] [CMD...]  ssh into a machine with the lab's client key (USER: root, rmm)
#   boot.sh boot-replica [--firmware bios|uefi] [--net CIDR] [--address A] [--port P] [--mac M]
#                        [--slice1 OFFSET:SIZE] [--slice2 OFFSET:SIZE]
#                        [--no-wait]
#                                boot the landing's two data disks alone (landing powered off) on
#                                other hardware, from their own bootloader: q35, AHCI (sda, sdb),
#                                an e1000e NIC pinned at 00:03.0, user net CIDR (default 10.0.4.0/24),
#                                ssh 127.0.0.1:P (default 2233) -> A:22 (default: .15 of CIDR);
#                                --gateway-port is another name for --port; uefi: OVMF with fresh
#                                variables (no boot entry: it boots sda's EFI/BOOT/BOOTX64.EFI)
#
# Machines (all -machine pc and virtio unless said, user networking with restrict=on, ssh forwarded
# from 127.0.0.1 only; users root and rmm (uid 1000, passwordless sudo) accept the client key):
#   origin   hostname app01, boots from its own disk (SeaBIOS, GRUB for BIOS in the MBR), no -kernel.
#            vda 3 GiB: MBR, vda1 ext4 "root" (Debian bookworm, linux-image-amd64, grub-pc).
#            vdb 2 GiB: LVM PV, VG vg_app, LV lv_data 1 GiB xfs "appdata" on /srv/app (fstab by
#            /dev/mapper path), about 1 GiB free in the VG. vdc 256 MiB: no filesystem, an "Oracle
#            ASM disk" with the marker ORCLDISK-RMM-ASM-MARKER at offsets 0 and 1 MiB.
#            NIC virtio-net at 00:03.0 = ens3, static 10.0.2.15/24 gw 10.0.2.2 dns 10.0.2.3
#            (/etc/network/interfaces). Application data on /srv/app (hard links, a 64 MiB sparse
#            file, a POSIX ACL, a user.* xattr, a setuid copy of id) and /home/appuser (uid 1001);
#            app-heartbeat.service writes the date to /srv/app/heartbeat every 5 s;
#            /usr/local/sbin/app-manifest prints a stable listing of that data to compare.
#            With --firmware uefi: the same server (hostname, NIC, addresses, users, client key, vdb,
#            vdc, application; its own host keys and data bytes) booting UEFI from its own disk: OVMF
#            (pflash, a fresh copy of OVMF_VARS_4M per run: $RMM_BOOT_DIR/origin-OVMF_VARS.fd, so no
#            boot entry: OVMF boots EFI/BOOT/BOOTX64.EFI), still -machine pc with virtio disks.
#            vda 3 GiB: GPT; vda1 128 MiB at 1 MiB, the EFI system partition (FAT32, no label,
#            /boot/efi by UUID in fstab, umask=0077), holding GRUB (grub-efi-amd64, unsigned, no shim)
#            at EFI/debian/grubx64.efi and at the removable path EFI/BOOT/BOOTX64.EFI; vda2 ext4
#            "root" on / (from 129 MiB to 1 MiB before the end). grub-pc is not installed; efibootmgr
#            is, and debconf's grub2/force_efi_extra_removable is true.
#   landing  hostname landing: a separate small system disk vda (ext4, no partition table, booted
#            with -kernel/-initrd from the image) built from the same debootstrap tree, with its own
#            machine-id and host keys; network 10.0.3.0/24, address 10.0.3.15 on ens3. vdb 4 GiB and
#            vdc 3 GiB: blank qcow2 files made fresh by every `up landing`, for origin disks A and B.
#   replica  the landing's vdb and vdc (on qcow2 overlays: the landing's files stay as written) as
#            sda and sdb; its host keys are learnt on first contact (known_hosts in the state dir).
#
# The image is built without device-mapper on this machine: one debootstrap tree makes both system
# disks (mkfs.ext4 -d; origin's inside an MBR partition written with sfdisk and dd, no loop
# device), and one boot of the origin with -kernel/-initrd installs GRUB on vda, creates the LVM
# layout and the data, and powers off. The result is cached read-only in
# $RMM_LAB_CACHE/boot-<recipe hash>/ with the lab's client key pair (id_ed25519) and the machines'
# host keys; every `up` boots qcow2 overlays on top of it, so a run never changes the cache.
# The UEFI origin's image is a recipe of its own on top of that one (its hash covers the BIOS
# recipe's hash and client key), cached read-only in $RMM_LAB_CACHE/boot-uefi-<hash>/ (origin disks,
# origin host keys, a copy of the client key pair): a second debootstrap tree (grub-efi-amd64 and
# efibootmgr instead of grub-pc) configured by the same functions, its ext4 written into GPT
# partition 2 the same way, and the same preparing boot (SeaBIOS, -kernel) whose GRUB step makes
# the ESP's FAT32 and installs GRUB for UEFI with --no-nvram. Building the BIOS image anew removes
# every older image, UEFI ones included (they hold its old client key).
#
# Environment: RMM_BOOT_DIR (state: overlays, blank disks, logs, boot.json; default /var/tmp/rmm-boot,
# not a tmpfs: the disks grow), RMM_LAB_CACHE (default /var/cache/rmm-lab), RMM_BOOT_ORIGIN_PORT
# (2231), RMM_BOOT_LANDING_PORT (2232), RMM_BOOT_REPLICA_PORT (2233), RMM_BOOT_TIMEOUT (seconds to
# wait for ssh, default 300), RMM_BOOT_ACCEL (qemu accelerators, default tcg; e.g. kvm:tcg),
# RMM_BOOT_CPUS (2), RMM_BOOT_MEMORY (MiB, 1024), RMM_LAB_MIRROR (default: from apt's sources).
set -euo pipefail

# Debian packages this script needs on the machine running the machines (CI: `boot.sh deps`).
BOOT_HOST_PACKAGES="bash coreutils util-linux qemu-system-x86 qemu-utils debootstrap e2fsprogs fdisk ovmf openssh-client python3"

IMAGE_SUITE="bookworm"
IMAGE_VARIANT="minbase"
# linux-image-amd64, not -cloud-amd64: the cloud flavour has neither e1000e nor ahci, which the
# replica's hardware needs.
IMAGE_PACKAGES="linux-image-amd64,initramfs-tools,grub-pc,systemd-sysv,udev,kmod,ifupdown,lvm2,xfsprogs,e2fsprogs,fdisk,gdisk,dosfstools,rsync,sudo,openssh-server,openssh-client,acl,attr,iproute2,procps,util-linux,coreutils,tar,findutils,hostname,less"

DISK_A_SIZE=$((3 * 1024 * 1024 * 1024))
DISK_B_SIZE=$((2 * 1024 * 1024 * 1024))
DISK_C_SIZE=$((256 * 1024 * 1024))
PART_START=$((1024 * 1024)) # vda1 at 1 MiB: room for GRUB's core.img after the MBR
LANDING_ROOT_SIZE=$((3 * 1024 * 1024 * 1024))
# The UEFI origin (a recipe of its own, uefi_image_recipe): the same packages but GRUB for UEFI,
# then dracut in place of initramfs-tools, as RHEL-family servers have (so the replica's initramfs is
# rebuilt by rmm's dracut branch); vda: GPT, the EFI system partition at 1 MiB, root after it up
# to 1 MiB before the end (the backup GPT is in the last 33 sectors).
UEFI_IMAGE_PACKAGES="${IMAGE_PACKAGES/grub-pc/grub-efi-amd64},efibootmgr"
# Installed after debootstrap, which cannot take them with linux-image (it pulls initramfs-tools):
# apt replaces initramfs-tools with dracut.
UEFI_DRACUT_PACKAGES="dracut"
ESP_START=$((1024 * 1024))
ESP_SIZE=$((128 * 1024 * 1024))
UEFI_ROOT_START=$((ESP_START + ESP_SIZE))
UEFI_ROOT_SIZE=$((DISK_A_SIZE - UEFI_ROOT_START - 1024 * 1024))
UEFI_GPT_ID="524D4D01-0000-4000-8000-000000000001"
LANDING_DISK1_SIZE=$((4 * 1024 * 1024 * 1024))
LANDING_DISK2_SIZE=$((3 * 1024 * 1024 * 1024))
VG_NAME="vg_app"
LV_NAME="lv_data"
LV_SIZE="1G"
LV_FSTYPE="xfs"
LV_LABEL="appdata"
APP_MOUNT="/srv/app"
ASM_MARKER="ORCLDISK-RMM-ASM-MARKER"
ROOT_LABEL="root"

ORIGIN_HOSTNAME="app01"
ORIGIN_NET="10.0.2.0/24"
ORIGIN_ADDRESS="10.0.2.15"
ORIGIN_MAC="52:54:00:12:34:56"
LANDING_HOSTNAME="landing"
LANDING_NET="10.0.3.0/24"
LANDING_ADDRESS="10.0.3.15"
LANDING_MAC="52:54:00:12:34:57"
# The name systemd gives a virtio-net NIC at 00:03.0 on -machine pc (the slot's hotplug number).
PC_IFACE="ens3"
REPLICA_NET="10.0.4.0/24"
REPLICA_MAC="52:54:00:12:34:99"
# The name systemd gives the e1000e NIC at 00:03.0 on q35's pcie.0 (no slot number: path name).
REPLICA_IFACE="enp0s3"
LAB_USER="rmm"
LAB_UID=1000
APP_USER="appuser"
APP_UID=1001

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

STATE="${RMM_BOOT_DIR:-/var/tmp/rmm-boot}"
STATE="${STATE%/}"
CACHE="${RMM_LAB_CACHE:-/var/cache/rmm-lab}"
CACHE="${CACHE%/}"
ORIGIN_PORT="${RMM_BOOT_ORIGIN_PORT:-2231}"
LANDING_PORT="${RMM_BOOT_LANDING_PORT:-2232}"
REPLICA_PORT="${RMM_BOOT_REPLICA_PORT:-2233}"
ACCEL="${RMM_BOOT_ACCEL:-tcg}"
BOOT_TIMEOUT="${RMM_BOOT_TIMEOUT:-300}"
CPUS="${RMM_BOOT_CPUS:-2}"
MEMORY="${RMM_BOOT_MEMORY:-1024}"
BUILD_BOOT_TIMEOUT=1200
POWEROFF_TIMEOUT=180
OVMF_CODE="/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS="/usr/share/OVMF/OVMF_VARS_4M.fd"
MACHINES="origin landing replica"

log() { printf '[boot] %s\n' "$*" >&2; }
die() { printf 'boot.sh: error: %s\n' "$*" >&2; exit 1; }

is_number() { [[ "$1" =~ ^[0-9]+$ ]]; }

check_port() { # NAME VALUE
  if ! is_number "$2" || (($2 < 1 || $2 > 65535)); then die "$1 must be a TCP port: '$2'"; fi
}

check_paths() {
  [[ "$STATE" == /?* ]] || die "RMM_BOOT_DIR must be an absolute path other than /: '$STATE'"
  [[ "$CACHE" == /?* ]] || die "RMM_LAB_CACHE must be an absolute path other than /: '$CACHE'"
  check_port RMM_BOOT_ORIGIN_PORT "$ORIGIN_PORT"
  check_port RMM_BOOT_LANDING_PORT "$LANDING_PORT"
  check_port RMM_BOOT_REPLICA_PORT "$REPLICA_PORT"
  is_number "$BOOT_TIMEOUT" || die "RMM_BOOT_TIMEOUT must be a number of seconds: '$BOOT_TIMEOUT'"
  is_number "$CPUS" || die "RMM_BOOT_CPUS must be a number: '$CPUS'"
  is_number "$MEMORY" || die "RMM_BOOT_MEMORY must be a number of MiB: '$MEMORY'"
}

need_root() { [[ "$(id -u)" == 0 ]] || die "the boot lab needs root (debootstrap, chroot)"; }

check_name() { # NAME
  [[ " $MACHINES " == *" $1 "* ]] || die "unknown machine '$1' (origin, landing, replica)"
}

# One lock per machine, beside the state directory (which `down all` removes), held while a
# command changes that machine.
lock_machine() { # FD NAME
  mkdir -p "$STATE.locks"
  eval "exec $1>\"\$STATE.locks/\$2\""
  flock -w 1800 "$1" || die "another boot.sh holds $STATE.locks/$2"
}

# ---------------------------------------------------------------------------------------- deps

cmd_deps() {
  need_root
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $BOOT_HOST_PACKAGES
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
  ensure_tool sfdisk fdisk
  ensure_tool flock util-linux
  ensure_tool python3 python3
}

# debian_mirror: in lib.sh.
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# ------------------------------------------------------------------------------- guest scripts

# /usr/local/sbin/app-manifest on the origin (and so on its replica).
app_manifest_script() {
  cat <<'EOF'
#!/bin/bash
# app-manifest (rmm boot lab): a stable, sorted listing of the application's data, to compare a
# server with its replica. Arguments: the trees (default /srv/app /home/appuser). One line per path,
# tab-separated: path, type (find's %y: f d l p s b c), mode (octal, with setuid/setgid/sticky),
# uid, gid, size, link count, sha256 (files) or target (symlinks), extended POSIX ACL entries and
# user.* xattrs (name=hex), each comma-separated, '-' for none. Directories print '-' for size and
# link count (both depend on the filesystem). /srv/app/heartbeat (rewritten every 5 s) is left out.
set -euo pipefail
export LC_ALL=C
[ "$#" -gt 0 ] || set -- /srv/app /home/appuser
find "$@" -xdev ! -path /srv/app/heartbeat -printf '%p\t%y\t%m\t%U\t%G\t%s\t%n\0' | sort -z |
  while IFS=$'\t' read -r -d '' path type mode uid gid size links; do
    sum=- acl=- xattrs=-
    case "$type" in
      f) sum="$(sha256sum <"$path")" sum="${sum%% *}" ;;
      l) sum="$(readlink -- "$path")" ;;
      d) size=- links=- ;;
    esac
    if [ "$type" = f ] || [ "$type" = d ]; then
      acl="$(getfacl -cpsE -- "$path" 2>/dev/null | sed '/^$/d' | paste -sd, -)"
      xattrs="$(getfattr -h --absolute-names -d -m '^user\.' -e hex -- "$path" 2>/dev/null | sed '/^#/d; /^$/d' | paste -sd, -)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$type" "$mode" "$uid" "$gid" "$size" "$links" \
      "$sum" "${acl:--}" "${xattrs:--}"
  done
EOF
}

# Runs inside the origin once, on the image build's boot (rmm.prepare on the kernel command line):
# GRUB on vda, the LVM layout on vdb, the application data, then power off.
origin_prepare_script() {
  cat <<'EOF'
#!/bin/sh
set -eux
udevadm settle
ip -o link show | sed 's/^/rmm-boot-prepare: link: /' >/dev/console
# GRUB for BIOS in vda's MBR gap, and its configuration (root=UUID of vda1).
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | debconf-set-selections
grub-install --target=i386-pc /dev/vda
update-grub
# LVM on vdb: vg_app/lv_data, xfs, mounted by its /dev/mapper path; the rest of the VG stays free.
pvcreate -y /dev/vdb
vgcreate -y @VG@ /dev/vdb
lvcreate -y -W y -Z y -L @LV_SIZE@ -n @LV@ @VG@
mkfs.@FSTYPE@ -q -L @LV_LABEL@ /dev/mapper/@VG@-@LV_DM@
mkdir -p @MOUNT@
printf '/dev/mapper/%s %s %s defaults 0 2\n' @VG@-@LV_DM@ @MOUNT@ @FSTYPE@ >>/etc/fstab
systemctl daemon-reload
mount @MOUNT@
# The application's data: hard links, a sparse file, an ACL, an xattr, a setuid binary.
cd @MOUNT@
mkdir -p bin conf data docs links shared spool empty
printf 'listen=0.0.0.0:8080\nworkers=4\n' >conf/app.conf
printf 'secret=rmm-lab\n' >conf/secret.conf
chmod 0600 conf/secret.conf
i=1
while [ "$i" -le 16 ]; do
  head -c 1048576 /dev/urandom >"data/blob-$i.bin"
  printf 'document %s of the rmm boot lab\n' "$i" >"docs/doc-$i.txt"
  i=$((i + 1))
done
ln data/blob-1.bin links/blob-1.hardlink
ln docs/doc-1.txt links/doc-1.link-a
ln docs/doc-1.txt links/doc-1.link-b
ln -s ../data/blob-2.bin links/blob-2.symlink
# 64 MiB apparent, three 4 KiB blocks written (start, middle, end).
truncate -s 64M data/sparse.img
head -c 4096 /dev/urandom | dd of=data/sparse.img bs=4096 seek=0 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of=data/sparse.img bs=4096 seek=8192 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of=data/sparse.img bs=4096 seek=16383 conv=notrunc status=none
printf 'readable by appuser and group adm through an ACL\n' >docs/acl-file.txt
chmod 0640 docs/acl-file.txt
setfacl -m u:@APP_USER@:rw,g:adm:r docs/acl-file.txt
setfacl -d -m u:@APP_USER@:rwx shared
printf 'shared by default ACL\n' >shared/inherited.txt
printf 'has a user xattr\n' >docs/xattr-file.txt
setfattr -n user.rmm.origin -v app01 docs/xattr-file.txt
setfattr -n user.rmm.checksum -v 0123456789abcdef docs/xattr-file.txt
cp /usr/bin/id bin/suid-tool
chmod 4755 bin/suid-tool
cp /usr/bin/true bin/sgid-tool
chown root:adm bin/sgid-tool
chmod 2755 bin/sgid-tool
printf 'name with spaces\n' >"docs/a file with spaces.txt"
printf 'non-ascii name\n' >"$(printf 'docs/r\303\251sum\303\251.txt')"
chown -R @APP_USER@:@APP_USER@ data spool shared
chmod 1777 spool
systemctl enable app-heartbeat.service
find . -xdev | wc -l
du -sh --apparent-size . ; du -sh .
vgs
lvs
findmnt @MOUNT@
ls /etc/lvm/devices 2>/dev/null || echo "no LVM devices file"
sync
printf 'prepared: grub on /dev/vda, @VG@/@LV@ on /dev/vdb\n' >>/etc/rmm-lab-image
rm -f /etc/systemd/system/rmm-boot-prepare.service
echo "rmm-boot-prepare: done" >/dev/console
EOF
}

origin_prepare_unit() {
  cat <<'EOF'
[Unit]
Description=rmm boot lab: install GRUB, create the LVM layout and the data, then power off
ConditionKernelCommandLine=rmm.prepare
After=local-fs.target systemd-udev-trigger.service
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rmm-boot-prepare
StandardOutput=journal+console
StandardError=journal+console
EOF
}

heartbeat_unit() {
  cat <<'EOF'
[Unit]
Description=Application heartbeat: the date in /srv/app/heartbeat every 5 s
RequiresMountsFor=/srv/app
ConditionPathIsMountPoint=/srv/app

[Service]
ExecStart=/bin/sh -c 'while :; do date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ >/srv/app/heartbeat; sleep 5; done'
Restart=always

[Install]
WantedBy=multi-user.target
EOF
}

write_sshd_config() { # ROOT
  cat >"$1/etc/ssh/sshd_config" <<'EOF'
# rmm boot lab: key authentication only
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

# ------------------------------------------------------------------------------------- image

# What both systems share: users, the client key, sshd, quiet timers.
configure_common() { # ROOT CLIENT_PUBKEY_FILE
  local root="$1" pub="$2" user home unit
  write_sshd_config "$root"
  chroot "$root" useradd --create-home --uid "$LAB_UID" --user-group --shell /bin/bash "$LAB_USER"
  # '*': no password, but not locked ('!'), which sshd refuses even for key logins without PAM.
  chroot "$root" usermod -p '*' root
  chroot "$root" usermod -p '*' "$LAB_USER"
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$LAB_USER" >"$root/etc/sudoers.d/$LAB_USER"
  chmod 0440 "$root/etc/sudoers.d/$LAB_USER"
  for user in root "$LAB_USER"; do
    home="$(chroot "$root" getent passwd "$user" | cut -d: -f6)"
    install -d -m 0700 "$root$home/.ssh"
    install -m 0600 "$pub" "$root$home/.ssh/authorized_keys"
    chroot "$root" chown -R "$user:" "$home/.ssh"
  done
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-firstboot.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/rmm-boot.conf"
}

# One system's identity: hostname, static address, machine-id, host keys (saved to HOSTKEYS).
configure_identity() { # ROOT HOSTNAME IFACE ADDRESS/PREFIX GATEWAY DNS ROOT_UUID HOSTKEYS
  local root="$1" name="$2" iface="$3" cidr="$4" gw="$5" dns="$6" uuid="$7" keys="$8" t
  printf '%s\n' "$name" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n%s\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' \
    "${cidr%/*}" "$name" >"$root/etc/hosts"
  printf '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=%s / ext4 errors=remount-ro 0 1\n' \
    "$uuid" >"$root/etc/fstab"
  cat >"$root/etc/network/interfaces" <<EOF
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
auto $iface
iface $iface inet static
    address $cidr
    gateway $gw
    dns-nameservers $dns
EOF
  # qemu's DNS; with restrict=on it answers nothing, so a single short try.
  printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$dns" >"$root/etc/resolv.conf"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
  echo >>"$root/etc/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  for t in ed25519 ecdsa rsa; do
    ssh-keygen -q -t "$t" -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_${t}_key"
    cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_${t}_key.pub"
  done >"$keys"
}

# The origin's own things: GRUB settings, the application, its user and data in /home.
configure_origin() { # ROOT
  local root="$1" i
  cat >"$root/etc/default/grub" <<'EOF'
# rmm boot lab: a server with a serial console.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
GRUB_DISABLE_OS_PROBER=true
EOF
  chroot "$root" useradd --create-home --uid "$APP_UID" --user-group --shell /bin/bash "$APP_USER"
  mkdir -p "$root/home/$APP_USER/tree/a/b/c" "$root/home/$APP_USER/tree/empty"
  for i in $(seq 1 12); do
    printf 'line %s\n' $(seq 1 "$((i * 50))") >"$root/home/$APP_USER/tree/a/file-$i.txt"
  done
  printf 'deep\n' >"$root/home/$APP_USER/tree/a/b/c/deep.txt"
  printf 'private\n' >"$root/home/$APP_USER/tree/private.txt"
  chmod 0600 "$root/home/$APP_USER/tree/private.txt"
  ln "$root/home/$APP_USER/tree/a/file-1.txt" "$root/home/$APP_USER/tree/file-1.hardlink"
  ln -s a/b/c/deep.txt "$root/home/$APP_USER/tree/deep.symlink"
  ln -s /nonexistent "$root/home/$APP_USER/tree/dangling.symlink"
  chroot "$root" chown -R -h "$APP_USER:" "/home/$APP_USER/tree"
  app_manifest_script >"$root/usr/local/sbin/app-manifest"
  chmod 0755 "$root/usr/local/sbin/app-manifest"
  heartbeat_unit >"$root/etc/systemd/system/app-heartbeat.service"
  origin_prepare_script | sed -e "s/@VG@/$VG_NAME/g" -e "s/@LV@/$LV_NAME/g" -e "s/@LV_DM@/${LV_NAME//-/--}/g" \
    -e "s/@LV_SIZE@/$LV_SIZE/g" -e "s#@MOUNT@#$APP_MOUNT#g" -e "s/@FSTYPE@/$LV_FSTYPE/g" \
    -e "s/@LV_LABEL@/$LV_LABEL/g" -e "s/@APP_USER@/$APP_USER/g" >"$root/usr/local/sbin/rmm-boot-prepare"
  chmod 0755 "$root/usr/local/sbin/rmm-boot-prepare"
  # Not enabled: the build's boot asks for it with systemd.wants= on the kernel command line.
  origin_prepare_unit >"$root/etc/systemd/system/rmm-boot-prepare.service"
}

# The image recipe's first half: debootstrap, the shared configuration, then the landing's tree
# split off, then the origin's own configuration.
build_trees() { # BUILD MIRROR ORIGIN_UUID LANDING_UUID
  local build="$1" mirror="$2" ouuid="$3" luuid="$4" root="$1/rootfs"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant="$IMAGE_VARIANT" --include="$IMAGE_PACKAGES" \
    "$IMAGE_SUITE" "$root" "$mirror"
  mount -t proc proc "$root/proc"
  if ! configure_common "$root" "$build/id_ed25519.pub"; then umount "$root/proc"; return 1; fi
  umount "$root/proc"
  chroot "$root" apt-get clean
  rm -rf "${root:?}"/dev/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/*
  mkdir -p "$root/var/lib/apt/lists/partial"
  cp -a "$root" "$build/landing-rootfs"
  configure_identity "$build/landing-rootfs" "$LANDING_HOSTNAME" "$PC_IFACE" "$LANDING_ADDRESS/${LANDING_NET#*/}" \
    "$(net_host "$LANDING_NET" 2)" "$(net_host "$LANDING_NET" 3)" "$luuid" "$build/landing_host_keys"
  printf 'rmm boot lab: landing system, recipe %s\n' "$HASH" >"$build/landing-rootfs/etc/rmm-lab-image"
  configure_identity "$root" "$ORIGIN_HOSTNAME" "$PC_IFACE" "$ORIGIN_ADDRESS/${ORIGIN_NET#*/}" \
    "$(net_host "$ORIGIN_NET" 2)" "$(net_host "$ORIGIN_NET" 3)" "$ouuid" "$build/origin_host_keys"
  configure_origin "$root"
  printf 'rmm boot lab: origin %s, recipe %s\n' "$ORIGIN_HOSTNAME" "$HASH" >"$root/etc/rmm-lab-image"
}


# The recipe's second half: the disks from the trees (no mount, no loop device), then one boot of
# the origin with -kernel/-initrd from its tree that prepares it and powers off.
build_disks() { # BUILD ORIGIN_UUID LANDING_UUID
  local build="$1" ouuid="$2" luuid="$3" kernel initrd accel
  kernel="$(find "$build/rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
  initrd="$(find "$build/rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)"
  [[ -f "$kernel" && -f "$initrd" ]] || die "no kernel or initrd in $build/rootfs/boot"
  cp "$kernel" "$build/vmlinuz"
  cp "$initrd" "$build/initrd.img"
  # Landing: one ext4 filesystem on the whole disk.
  truncate -s "$LANDING_ROOT_SIZE" "$build/landing-root.raw"
  mkfs.ext4 -q -F -L landing-root -U "$luuid" -d "$build/landing-rootfs" "$build/landing-root.raw"
  rm -rf --one-file-system "$build/landing-rootfs"
  # Origin disk A: an MBR with one bootable Linux partition at 1 MiB; its ext4 is made in a file
  # of its own, then written in place.
  truncate -s "$DISK_A_SIZE" "$build/origin-a.raw"
  printf 'label: dos\nlabel-id: 0x524d4d01\nunit: sectors\n\nstart=%s, type=83, bootable\n' \
    "$((PART_START / 512))" | sfdisk -q "$build/origin-a.raw"
  truncate -s "$((DISK_A_SIZE - PART_START))" "$build/origin-a1.raw"
  mkfs.ext4 -q -F -L "$ROOT_LABEL" -U "$ouuid" -d "$build/rootfs" "$build/origin-a1.raw"
  dd if="$build/origin-a1.raw" of="$build/origin-a.raw" bs=4M seek="$PART_START" oflag=seek_bytes \
    conv=notrunc,sparse status=none
  rm -f "$build/origin-a1.raw"
  rm -rf --one-file-system "$build/rootfs"
  truncate -s "$DISK_B_SIZE" "$build/origin-b.raw"
  # Origin disk C: no filesystem, an "ASM disk" header at 0 and its copy at 1 MiB.
  truncate -s "$DISK_C_SIZE" "$build/origin-c.raw"
  printf '%s' "$ASM_MARKER" | dd of="$build/origin-c.raw" conv=notrunc status=none
  printf '%s' "$ASM_MARKER" | dd of="$build/origin-c.raw" bs=1M seek=1 conv=notrunc status=none
  log "image: the origin's first boot installs GRUB, creates the LVM layout and the data (serial log $build/prepare.log)"
  mapfile -t accel < <(accel_args)
  timeout "$BUILD_BOOT_TIMEOUT" qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" -machine pc -no-reboot \
    -name rmm-boot-build,process=rmm-boot-build \
    -kernel "$build/vmlinuz" -initrd "$build/initrd.img" \
    -append "root=UUID=$ouuid rw console=ttyS0,115200 panic=-1 rmm.prepare systemd.wants=rmm-boot-prepare.service" \
    -drive "file=$build/origin-a.raw,format=raw,if=none,id=da,cache=writeback" -device virtio-blk-pci,drive=da,addr=0x4 \
    -drive "file=$build/origin-b.raw,format=raw,if=none,id=db,cache=writeback" -device virtio-blk-pci,drive=db,addr=0x5 \
    -drive "file=$build/origin-c.raw,format=raw,if=none,id=dc,cache=writeback" -device virtio-blk-pci,drive=dc,addr=0x6 \
    -netdev "user,id=n0,restrict=on,ipv6=off,net=$ORIGIN_NET" -device "virtio-net-pci,netdev=n0,mac=$ORIGIN_MAC,addr=0x3" \
    -serial "file:$build/prepare.log" -monitor none 8>&- 9>&- </dev/null ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot failed or timed out"; }
  grep -q '^rmm-boot-prepare: done' "$build/prepare.log" ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot did not finish (see $build/prepare.log)"; }
  # A clean power off leaves the root filesystem marked clean (xfs on the LV is unmounted before).
  dumpe2fs -h "$build/origin-a.raw?offset=$PART_START" 2>/dev/null | grep -q '^Filesystem state: *clean$' ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot did not power off cleanly (see $build/prepare.log)"; }
  [[ "$(dd if="$build/origin-c.raw" bs=1M skip=1 count=1 status=none | head -c ${#ASM_MARKER})" == "$ASM_MARKER" ]] ||
    die "the ASM marker is missing from disk C"
  local d
  for d in origin-a origin-b origin-c landing-root; do
    qemu-img convert -O qcow2 "$build/$d.raw" "$build/$d.qcow2"
    rm -f "$build/$d.raw"
  done
  printf '%s\n' "$ouuid" >"$build/origin_root_uuid"
  printf '%s\n' "$luuid" >"$build/landing_root_uuid"
  chmod 0444 "$build"/*.qcow2 "$build"/vmlinuz "$build"/initrd.img "$build"/*_host_keys "$build"/*_root_uuid \
    "$build"/id_ed25519.pub
  chmod 0600 "$build"/id_ed25519
}

# Everything that decides what the image is: its hash names the cache directory.
image_recipe() {
  printf 'suite=%s\nvariant=%s\npackages=%s\nmirror=%s\n' "$IMAGE_SUITE" "$IMAGE_VARIANT" "$IMAGE_PACKAGES" "$MIRROR"
  printf 'disks=%s,%s,%s part=%s landing=%s marker=%s root=%s\n' "$DISK_A_SIZE" "$DISK_B_SIZE" "$DISK_C_SIZE" \
    "$PART_START" "$LANDING_ROOT_SIZE" "$ASM_MARKER" "$ROOT_LABEL"
  printf 'lvm=%s/%s:%s:%s:%s:%s\n' "$VG_NAME" "$LV_NAME" "$LV_SIZE" "$LV_FSTYPE" "$LV_LABEL" "$APP_MOUNT"
  printf 'origin=%s,%s,%s,%s landing=%s,%s,%s,%s iface=%s\n' "$ORIGIN_HOSTNAME" "$ORIGIN_NET" "$ORIGIN_ADDRESS" \
    "$ORIGIN_MAC" "$LANDING_HOSTNAME" "$LANDING_NET" "$LANDING_ADDRESS" "$LANDING_MAC" "$PC_IFACE"
  printf 'users=%s:%s,%s:%s\n' "$LAB_USER" "$LAB_UID" "$APP_USER" "$APP_UID"
  declare -f app_manifest_script origin_prepare_script origin_prepare_unit heartbeat_unit write_sshd_config \
    configure_common configure_identity configure_origin build_trees build_disks net_host
}

image_hash() { image_recipe | sha256sum | cut -c1-16; }

# ------------------------------------------------------------------------------- UEFI image

# The UEFI origin's recipe is one of its own on top of the BIOS image's: build_trees and build_disks
# stay as they are (image_recipe hashes their text), and the UEFI recipe calls what they share
# (configure_common, configure_identity, configure_origin and its prepare script but the GRUB
# step) and has its own functions for the rest.

# The UEFI origin's GRUB step on its preparing boot, in place of origin_prepare_script's BIOS one.
# That boot runs on SeaBIOS with -kernel, without EFI variables (--no-nvram); each machine starts
# on fresh OVMF variables anyway, with no boot entry, so OVMF boots the removable path.
uefi_grub_step() {
  cat <<'EOF'
# The EFI system partition vda1 (FAT32, on /boot/efi by UUID), GRUB for UEFI on it at EFI/debian
# and at the removable path EFI/BOOT/BOOTX64.EFI, and its configuration (root=UUID of vda2).
mkfs.vfat -F 32 /dev/vda1
udevadm settle
esp_uuid="$(blkid -s UUID -o value /dev/vda1)"
test -n "$esp_uuid"
mkdir -p /boot/efi
printf 'UUID=%s /boot/efi vfat umask=0077 0 1\n' "$esp_uuid" >>/etc/fstab
systemctl daemon-reload
mount /boot/efi
echo "grub-efi-amd64 grub2/force_efi_extra_removable boolean true" | debconf-set-selections
grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian --no-nvram
grub-install --target=x86_64-efi --efi-directory=/boot/efi --no-nvram --removable
ls -l /boot/efi/EFI/debian/grubx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI
update-grub
EOF
}

# The prepare script configure_origin wrote, made the UEFI origin's: its GRUB step (from the line
# "# GRUB for BIOS" to update-grub) replaced by uefi_grub_step.
uefi_prepare_script() { # FILE
  local f="$1"
  STEP="$(uefi_grub_step)" awk '
    /^# GRUB for BIOS/ { print ENVIRON["STEP"]; skip = 1; next }
    skip { if ($0 == "update-grub") { skip = 0; replaced = 1 } next }
    { print }
    END { exit !replaced }' "$f" >"$f.uefi" || { echo "no BIOS GRUB step in $f" >&2; return 1; }
  sed -i 's#prepared: grub on /dev/vda,#prepared: grub for UEFI on /dev/vda1 (ESP),#' "$f.uefi"
  if grep -q 'i386-pc' "$f.uefi" || ! grep -q 'prepared: grub for UEFI' "$f.uefi"; then
    echo "$f: the UEFI GRUB step did not replace the BIOS one" >&2
    return 1
  fi
  mv -f "$f.uefi" "$f"
  chmod 0755 "$f"
}

# The UEFI recipe's first half: a debootstrap tree of its own (grub-efi-amd64, no grub-pc), given
# the shared configuration and the origin's, as build_trees does.
build_uefi_tree() { # BUILD MIRROR ORIGIN_UUID
  local build="$1" root="$1/rootfs"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant="$IMAGE_VARIANT" --include="$UEFI_IMAGE_PACKAGES" \
    "$IMAGE_SUITE" "$root" "$2"
  mount -t proc proc "$root/proc"
  if ! configure_common "$root" "$build/id_ed25519.pub"; then umount "$root/proc"; return 1; fi
  # dracut replaces initramfs-tools, and makes the kernel's initramfs again for any hardware (in a
  # chroot of this build machine), as the origin's own for the qemu machine it boots on.
  mkdir -p "$root/etc/dracut.conf.d"
  printf '# rmm boot lab: an initramfs for any hardware (the image is built in a chroot)\nhostonly="no"\n' \
    >"$root/etc/dracut.conf.d/10-rmm-lab.conf"
  if ! { chroot "$root" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q \
    --no-install-recommends $UEFI_DRACUT_PACKAGES && chroot "$root" dracut -f --regenerate-all; }; then
    umount "$root/proc"
    return 1
  fi
  umount "$root/proc"
  chroot "$root" apt-get clean
  rm -rf "${root:?}"/dev/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/*
  mkdir -p "$root/var/lib/apt/lists/partial"
  configure_identity "$root" "$ORIGIN_HOSTNAME" "$PC_IFACE" "$ORIGIN_ADDRESS/${ORIGIN_NET#*/}" \
    "$(net_host "$ORIGIN_NET" 2)" "$(net_host "$ORIGIN_NET" 3)" "$3" "$build/origin_host_keys"
  configure_origin "$root"
  uefi_prepare_script "$root/usr/local/sbin/rmm-boot-prepare"
  mkdir -p "$root/boot/efi"
  printf 'rmm boot lab: origin %s (UEFI), recipe %s\n' "$ORIGIN_HOSTNAME" "$UEFI_HASH" >"$root/etc/rmm-lab-image"
}

# The UEFI recipe's second half: vda with a GPT (the ESP left for the preparing boot to format,
# root's ext4 made from the tree in a file of its own and written in place), vdb and vdc as
# build_disks makes them, then the same preparing boot.
build_uefi_disks() { # BUILD ORIGIN_UUID
  local build="$1" ouuid="$2" kernel initrd
  kernel="$(find "$build/rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
  initrd="$(find "$build/rootfs/boot" -maxdepth 1 \( -name 'initrd.img-*' -o -name 'initramfs-*.img' \) | sort -V | tail -n 1)"
  [[ -f "$kernel" && -f "$initrd" ]] || die "no kernel or initrd in $build/rootfs/boot"
  cp "$kernel" "$build/vmlinuz"
  cp "$initrd" "$build/initrd.img"
  truncate -s "$DISK_A_SIZE" "$build/origin-a.raw"
  printf 'label: gpt\nlabel-id: %s\nunit: sectors\n\nstart=%s, size=%s, type=%s\nstart=%s, size=%s, type=%s\n' \
    "$UEFI_GPT_ID" "$((ESP_START / 512))" "$((ESP_SIZE / 512))" C12A7328-F81F-11D2-BA4B-00A0C93EC93B \
    "$((UEFI_ROOT_START / 512))" "$((UEFI_ROOT_SIZE / 512))" 0FC63DAF-8483-4772-8E79-3D69E4D80DE4 |
    sfdisk -q "$build/origin-a.raw"
  truncate -s "$UEFI_ROOT_SIZE" "$build/origin-a2.raw"
  mkfs.ext4 -q -F -L "$ROOT_LABEL" -U "$ouuid" -d "$build/rootfs" "$build/origin-a2.raw"
  dd if="$build/origin-a2.raw" of="$build/origin-a.raw" bs=4M seek="$UEFI_ROOT_START" oflag=seek_bytes \
    conv=notrunc,sparse status=none
  rm -f "$build/origin-a2.raw"
  rm -rf --one-file-system "$build/rootfs"
  truncate -s "$DISK_B_SIZE" "$build/origin-b.raw"
  # Origin disk C: no filesystem, an "ASM disk" header at 0 and its copy at 1 MiB.
  truncate -s "$DISK_C_SIZE" "$build/origin-c.raw"
  printf '%s' "$ASM_MARKER" | dd of="$build/origin-c.raw" conv=notrunc status=none
  printf '%s' "$ASM_MARKER" | dd of="$build/origin-c.raw" bs=1M seek=1 conv=notrunc status=none
  prepare_boot "$build" "$ouuid" "$UEFI_ROOT_START"
  [[ "$(dd if="$build/origin-a.raw" bs=1 skip=$((ESP_START + 82)) count=5 status=none)" == FAT32 ]] ||
    die "the preparing boot left no FAT32 on the EFI system partition (see $build/prepare.log)"
  rm -f "$build/vmlinuz" "$build/initrd.img"
  printf '%s\n' "$ouuid" >"$build/origin_root_uuid"
  finish_disks "$build" origin-a origin-b origin-c
}

# The origin's preparing boot on BUILD/origin-{a,b,c}.raw with -kernel/-initrd, as build_disks
# runs it: GRUB, the LVM layout and the data, then power off; then the checks that it did.
prepare_boot() { # BUILD ORIGIN_UUID ROOT_OFFSET
  local build="$1" ouuid="$2" accel
  log "image: the origin's first boot installs GRUB, creates the LVM layout and the data (serial log $build/prepare.log)"
  mapfile -t accel < <(accel_args)
  timeout "$BUILD_BOOT_TIMEOUT" qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" -machine pc -no-reboot \
    -name rmm-boot-build,process=rmm-boot-build \
    -kernel "$build/vmlinuz" -initrd "$build/initrd.img" \
    -append "root=UUID=$ouuid rw console=ttyS0,115200 panic=-1 rmm.prepare systemd.wants=rmm-boot-prepare.service" \
    -drive "file=$build/origin-a.raw,format=raw,if=none,id=da,cache=writeback" -device virtio-blk-pci,drive=da,addr=0x4 \
    -drive "file=$build/origin-b.raw,format=raw,if=none,id=db,cache=writeback" -device virtio-blk-pci,drive=db,addr=0x5 \
    -drive "file=$build/origin-c.raw,format=raw,if=none,id=dc,cache=writeback" -device virtio-blk-pci,drive=dc,addr=0x6 \
    -netdev "user,id=n0,restrict=on,ipv6=off,net=$ORIGIN_NET" -device "virtio-net-pci,netdev=n0,mac=$ORIGIN_MAC,addr=0x3" \
    -serial "file:$build/prepare.log" -monitor none 8>&- 9>&- </dev/null ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot failed or timed out"; }
  grep -q '^rmm-boot-prepare: done' "$build/prepare.log" ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot did not finish (see $build/prepare.log)"; }
  # A clean power off leaves the root filesystem marked clean (xfs on the LV is unmounted before).
  dumpe2fs -h "$build/origin-a.raw?offset=$3" 2>/dev/null | grep -q '^Filesystem state: *clean$' ||
    { tail -n 60 "$build/prepare.log" >&2; die "the preparing boot did not power off cleanly (see $build/prepare.log)"; }
  [[ "$(dd if="$build/origin-c.raw" bs=1M skip=1 count=1 status=none | head -c ${#ASM_MARKER})" == "$ASM_MARKER" ]] ||
    die "the ASM marker is missing from disk C"
}

# BUILD's raw disks NAME... become qcow2 files; the image's files are made read-only.
finish_disks() { # BUILD NAME...
  local build="$1" d
  shift
  for d in "$@"; do
    qemu-img convert -O qcow2 "$build/$d.raw" "$build/$d.qcow2"
    rm -f "$build/$d.raw"
  done
  chmod 0444 "$build"/*.qcow2 "$build"/*_host_keys "$build"/*_root_uuid "$build"/id_ed25519.pub
  chmod 0600 "$build"/id_ed25519
}

# Everything that decides what the UEFI origin's image is, after ensure_image or find_image (HASH
# and IMAGE are the BIOS image's): that image's hash covers the shared steps, its client key is
# authorised on the UEFI origin too.
uefi_image_recipe() {
  printf 'base=%s client-key=%s\n' "$HASH" "$(cut -d' ' -f1,2 "$IMAGE/id_ed25519.pub")"
  printf 'packages=%s then %s\n' "$UEFI_IMAGE_PACKAGES" "$UEFI_DRACUT_PACKAGES"
  printf 'gpt=%s esp=%s,%s root=%s,%s\n' "$UEFI_GPT_ID" "$ESP_START" "$ESP_SIZE" "$UEFI_ROOT_START" "$UEFI_ROOT_SIZE"
  declare -f uefi_grub_step uefi_prepare_script build_uefi_tree build_uefi_disks prepare_boot finish_disks
}

uefi_image_hash() { uefi_image_recipe | sha256sum | cut -c1-16; }

# Sets IMAGE to the cached image directory, building it first when missing.
ensure_image() {
  local build ouuid luuid started=$SECONDS
  MIRROR="$(debian_mirror)"
  HASH="$(image_hash)"
  IMAGE="$CACHE/boot-$HASH"
  if [[ -f "$IMAGE/complete" ]]; then
    log "image: cached $IMAGE"
    return
  fi
  lock_image_build "$IMAGE"
  [[ ! -f "$IMAGE/complete" ]] || return 0
  build="$CACHE/boot-build.$$"
  mkdir -p "$build"
  ssh-keygen -q -t ed25519 -N '' -C "rmm-boot-lab-client" -f "$build/id_ed25519"
  ouuid="$(cat /proc/sys/kernel/random/uuid)"
  luuid="$(cat /proc/sys/kernel/random/uuid)"
  log "image: debootstrap $IMAGE_SUITE ($IMAGE_VARIANT) from $MIRROR, log in $CACHE/boot-build.log"
  image_trees_step boot build_trees "$build" "$MIRROR" "$ouuid" "$luuid"
  log "image: trees ready ($(du -sh "$build/rootfs" | cut -f1) of files) after $((SECONDS - started))s"
  image_disks_step "$build" boot build_disks "$build" "$ouuid" "$luuid"
  # Older recipes' images go, the UEFI origin's too: they hold the older client key.
  publish_image "$build" "$IMAGE" boot- "$started"
}

# Sets UEFI_IMAGE (and IMAGE, HASH: ensure_image) to the UEFI origin's cached image directory,
# building it first when missing.
ensure_uefi_image() {
  local build ouuid started
  ensure_image
  started=$SECONDS
  UEFI_HASH="$(uefi_image_hash)"
  UEFI_IMAGE="$CACHE/boot-uefi-$UEFI_HASH"
  if [[ -f "$UEFI_IMAGE/complete" ]]; then
    log "image: cached $UEFI_IMAGE (UEFI origin)"
    return
  fi
  lock_image_build "$UEFI_IMAGE"
  [[ ! -f "$UEFI_IMAGE/complete" ]] || return 0
  build="$CACHE/boot-build.$$"
  mkdir -p "$build"
  # The BIOS image's client key pair: one key for every machine of the lab.
  cp "$IMAGE/id_ed25519" "$IMAGE/id_ed25519.pub" "$build/"
  ouuid="$(cat /proc/sys/kernel/random/uuid)"
  log "image: UEFI origin: debootstrap $IMAGE_SUITE ($IMAGE_VARIANT) from $MIRROR, log in $CACHE/boot-uefi-build.log"
  image_trees_step boot-uefi build_uefi_tree "$build" "$MIRROR" "$ouuid"
  log "image: UEFI origin: tree ready ($(du -sh "$build/rootfs" | cut -f1) of files) after $((SECONDS - started))s"
  image_disks_step "$build" boot-uefi build_uefi_disks "$build" "$ouuid"
  publish_image "$build" "$UEFI_IMAGE" boot-uefi- "$started"
}

# Takes the cache's build lock (fd 8) to build DIR and removes half-built images; or, when another
# boot.sh built DIR while we waited, releases it (the caller finds DIR complete).
lock_image_build() { # DIR
  ensure_tools
  ensure_tool debootstrap debootstrap
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.boot.lock"
  flock -w 3600 8 || die "another boot.sh is building an image ($CACHE/.boot.lock)"
  if [[ -f "$1/complete" ]]; then
    log "image: built by another boot.sh: $1"
    exec 8>&-
    return
  fi
  cleanup_builds
}

# An image's trees: CMD with its output in $CACHE/NAME-build.log, errexit in force (a background
# job, not an `if`); a failure shows the log's end, removes the half-built image and exits.
image_trees_step() { # NAME CMD...
  local log="$CACHE/$1-build.log"
  shift
  "$@" >"$log" 2>&1 &
  if ! wait "$!"; then
    tail -n 30 "$log" >&2
    cleanup_builds
    die "image build failed, see $log"
  fi
}

# An image's disks: CMD (which leaves the preparing boot's serial log in BUILD/prepare.log), the
# same way; the serial log is kept as $CACHE/NAME-prepare.log.
image_disks_step() { # BUILD NAME CMD...
  local build="$1" log="$CACHE/$2-prepare.log"
  shift 2
  "$@" &
  if ! wait "$!"; then
    cp -f "$build/prepare.log" "$log" 2>/dev/null || true
    cleanup_builds
    die "image build failed (serial log of the preparing boot: $log)"
  fi
  mv -f "$build/prepare.log" "$log"
}

# BUILD becomes DIR, marked complete; the complete images of other recipes named PREFIX* go; the
# build lock is released.
publish_image() { # BUILD DIR PREFIX STARTED
  local d
  touch "$1/complete"
  rm -rf --one-file-system "$2"
  mv "$1" "$2"
  for d in "$CACHE/$3"*/; do # images of older recipes
    d="${d%/}"
    [[ "$d" == "$2" || ! -f "$d/complete" ]] || rm -rf --one-file-system "$d"
  done
  exec 8>&-
  log "image: built $2 ($(du -sh "$2" | cut -f1)) in $((SECONDS - $4))s"
}

# Remove half-built images: stop a preparing boot left running, unmount what debootstrap left.
cleanup_builds() {
  local d target
  for d in "$CACHE"/boot-build.*; do
    [[ -d "$d" ]] || continue
    kill_qemu_naming "$d/"
    findmnt -rn -o TARGET | while IFS= read -r target; do
      target="$(printf '%b' "$target")"
      if [[ "$target" == "$d"/* ]]; then printf '%s\n' "$target"; fi # not `&&`: pipefail, errexit
    done | sort -r | while IFS= read -r target; do umount -l "$target" 2>/dev/null || true; done
    rm -rf --one-file-system "$d"
  done
}

cmd_image() { # [--firmware bios|uefi]
  local firmware
  firmware="$(firmware_option "$@")"
  need_root
  check_paths
  QEMU_COMMON_init
  if [[ "$firmware" == uefi ]]; then
    ensure_uefi_image
    printf '%s\n' "$UEFI_IMAGE"
  else
    ensure_image
    printf '%s\n' "$IMAGE"
  fi
}

# The value of an optional `--firmware bios|uefi` (the only arguments allowed); default bios.
firmware_option() { # [--firmware bios|uefi]
  local firmware=bios
  if (($#)); then
    [[ "$1" == --firmware && $# -eq 2 ]] || die "unexpected arguments: $* (only --firmware bios|uefi)"
    firmware="$2"
  fi
  [[ "$firmware" == bios || "$firmware" == uefi ]] || die "--firmware must be bios or uefi: '$firmware'"
  printf '%s\n' "$firmware"
}

# ------------------------------------------------------------------------------------ helpers

# qemu options of every boot (build, machines, replica); the hardware of the build's boot is in
# the recipe through build_disks, the accelerator, CPU count and memory size are not.
QEMU_COMMON_init() {
  # shellcheck disable=SC2054 # commas inside qemu options
  QEMU_COMMON=(-cpu max -smp "$CPUS" -m "$MEMORY" -nodefaults -no-user-config -display none
    -device virtio-rng-pci,addr=0x7)
}

accel_args() {
  local a accels out=()
  IFS=: read -r -a accels <<<"$ACCEL"
  for a in "${accels[@]}"; do out+=(-accel "$a"); done
  printf '%s\n' "${out[@]}"
}

ip_to_int() { # A.B.C.D
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  printf '%s\n' "$(((a << 24) | (b << 16) | (c << 8) | d))"
}

int_to_ip() { printf '%s.%s.%s.%s\n' "$(($1 >> 24 & 255))" "$(($1 >> 16 & 255))" "$(($1 >> 8 & 255))" "$(($1 & 255))"; }

# Host number N of the network CIDR (qemu's user net: 2 the gateway, 3 the DNS, 15 the guest).
net_host() { # CIDR N
  local base prefix
  base="$(ip_to_int "${1%/*}")"
  prefix="${1#*/}"
  int_to_ip "$(((base & ~((1 << (32 - prefix)) - 1) & 0xffffffff) + $2))"
}

check_cidr() { # CIDR
  if ! [[ "$1" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]{1,2})$ ]] || ((BASH_REMATCH[2] < 8 || BASH_REMATCH[2] > 29)); then
    die "not an IPv4 network CIDR (prefix 8 to 29): '$1'"
  fi
}

# PID's arguments, space-separated.
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

# Whether PID still runs (a process that exited is a zombie until its parent reaps it).
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

json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '"%s"' "$s"
}

# The running qemu of machine NAME, from its pidfile, if it still runs on this state directory.
machine_pid() { # NAME
  local pid cmd
  pid="$(cat "$STATE/$1.pid" 2>/dev/null)" || return 1
  is_number "$pid" || return 1
  cmd="$(proc_cmdline "$pid")" || return 1
  pid_running "$pid" || return 1
  [[ "$cmd" == *qemu-system* && "$cmd" == *"$STATE/$1-"* ]] || return 1
  printf '%s\n' "$pid"
}

machine_port() { # NAME
  case "$1" in
    origin) printf '%s\n' "$ORIGIN_PORT" ;;
    landing) printf '%s\n' "$LANDING_PORT" ;;
    replica) printf '%s\n' "$REPLICA_PORT" ;;
  esac
}

# The port recorded by the machine's last start (an `ssh` with other environment still finds it).
recorded_port() { # NAME
  local p
  p="$(sed -n 's/^      "sshPort": \([0-9]*\),$/\1/p' "$STATE/$1.json" 2>/dev/null || true)"
  printf '%s\n' "${p:-$(machine_port "$1")}"
}

ssh_opts() { # NAME PORT [STRICT]
  printf '%s\n' -F none -i "$STATE/id_ed25519" -o IdentitiesOnly=yes -o "UserKnownHostsFile=$STATE/$1.known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o "StrictHostKeyChecking=${3:-yes}" -o BatchMode=yes -o ConnectTimeout=10 \
    -o LogLevel=ERROR -p "$2"
}

# The machine's sshd, reached through the forwarded port, sends its banner (qemu itself accepts the
# connection at once, guest up or not), then the client key logs in with the host key checked.
machine_answers() { # NAME PORT STRICT
  local opts out
  # shellcheck disable=SC2016 # expanded by the inner bash
  if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 4 line <&3 && [[ "$line" == SSH-* ]]' \
    bash "$2" 2>/dev/null; then
    PROBE="no ssh banner from 127.0.0.1:$2 yet"
    return 1
  fi
  mapfile -t opts < <(ssh_opts "$1" "$2" "$3")
  if ! out="$(timeout 30 ssh "${opts[@]}" -l root 127.0.0.1 true 2>&1 </dev/null)"; then
    PROBE="sshd answers, but ssh root@127.0.0.1 -p $2 fails: ${out:-no answer in 30 s}"
    return 1
  fi
}

wait_for_ssh() { # NAME PID PORT STARTED STRICT
  local name="$1" pid="$2" port="$3" started="$4" strict="$5" next=10 elapsed
  PROBE="no probe yet"
  while :; do
    elapsed=$((SECONDS - started))
    if ! pid_running "$pid"; then
      tail -n 60 "$STATE/$name-serial.log" >&2 || true
      die "$name stopped during boot after ${elapsed}s (serial log above, $STATE/$name-serial.log)"
    fi
    machine_answers "$name" "$port" "$strict" && return 0
    elapsed=$((SECONDS - started))
    if ((elapsed >= BOOT_TIMEOUT)); then
      tail -n 60 "$STATE/$name-serial.log" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      die "$name's sshd does not answer on 127.0.0.1:$port after ${elapsed}s ($PROBE; serial log above, $STATE/$name-serial.log)"
    fi
    if ((elapsed >= next)); then
      log "$name: waiting for ssh (${elapsed}s: $PROBE)"
      next=$((next + 15))
    fi
    sleep 2
  done
}

# The lab's client key pair and a known_hosts for NAME on PORT, in the state directory.
prepare_state() { # NAME PORT HOSTKEYS_FILE|""
  mkdir -p "$STATE"
  install -m 0600 "$IMAGE/id_ed25519" "$STATE/id_ed25519"
  install -m 0644 "$IMAGE/id_ed25519.pub" "$STATE/id_ed25519.pub"
  if [[ -n "$3" ]]; then
    while read -r t; do printf '[127.0.0.1]:%s %s\n' "$2" "$t"; done <"$3" >"$STATE/$1.known_hosts"
  else
    : >"$STATE/$1.known_hosts"
  fi
}

# A disk of the machine in its JSON description.
disk_json() { # ROLE PATH BASE DEVICE SIZE
  printf '        {"role": %s, "path": %s, "base": %s, "device": %s, "sizeBytes": %s}' "$(json_str "$1")" \
    "$(json_str "$2")" "$(json_str "$3")" "$(json_str "$4")" "$5"
}

# $STATE/NAME.json: the machine; then boot.json, all machines' descriptions together.
write_machine_json() { # NAME PID HOSTNAME NET ADDRESS MACHINE FIRMWARE BOOT NIC_MODEL MAC PCI IFACE DISKS_JSON [EXTRA]
  local name="$1"
  {
    printf '    %s: {\n' "$(json_str "$name")"
    printf '      "name": %s,\n' "$(json_str "$name")"
    printf '      "host": "127.0.0.1",\n'
    printf '      "sshPort": %s,\n' "$(machine_port "$name")"
    printf '      "users": [%s, %s],\n' "$(json_str root)" "$(json_str "$LAB_USER")"
    printf '      "clientKey": %s,\n' "$(json_str "$STATE/id_ed25519")"
    printf '      "knownHosts": %s,\n' "$(json_str "$STATE/$name.known_hosts")"
    printf '      "hostname": %s,\n' "$(json_str "$3")"
    printf '      "network": %s,\n' "$(json_str "$4")"
    printf '      "gateway": %s,\n' "$(json_str "$(net_host "$4" 2)")"
    printf '      "dns": %s,\n' "$(json_str "$(net_host "$4" 3)")"
    printf '      "guestAddress": %s,\n' "$(json_str "$5")"
    printf '      "machine": %s,\n' "$(json_str "$6")"
    printf '      "firmware": %s,\n' "$(json_str "$7")"
    printf '      "boot": %s,\n' "$(json_str "$8")"
    printf '      "nic": {"model": %s, "mac": %s, "pciAddress": %s, "name": %s},\n' "$(json_str "$9")" \
      "$(json_str "${10}")" "$(json_str "${11}")" "$(json_str "${12}")"
    printf '      "disks": [\n%s\n      ],\n' "${13}"
    [[ -z "${14:-}" ]] || printf '%s\n' "${14}"
    printf '      "serialLog": %s,\n' "$(json_str "$STATE/$name-serial.log")"
    printf '      "pid": %s\n    }' "$2"
  } >"$STATE/$name.json.tmp"
  mv "$STATE/$name.json.tmp" "$STATE/$name.json"
  write_boot_json
}

write_boot_json() {
  local m first=1
  [[ -d "$STATE" ]] || return 0
  exec 7>"$STATE.locks/boot.json"
  flock -w 60 7 || die "cannot lock $STATE.locks/boot.json"
  {
    printf '{\n  "version": 1,\n'
    printf '  "stateDir": %s,\n' "$(json_str "$STATE")"
    printf '  "image": %s,\n' "$(json_str "${IMAGE:-}")"
    printf '  "clientKey": %s,\n' "$(json_str "$STATE/id_ed25519")"
    printf '  "machines": {'
    for m in $MACHINES; do
      [[ -f "$STATE/$m.json" ]] || continue
      ((first)) || printf ','
      first=0
      printf '\n'
      cat "$STATE/$m.json"
    done
    printf '\n  }\n}\n'
  } >"$STATE/boot.json.tmp"
  mv "$STATE/boot.json.tmp" "$STATE/boot.json"
  exec 7>&-
}

# The image a running lab uses (an `up` of one machine must not rebuild under the other), and the
# UEFI origin's that goes with it (UEFI_IMAGE, whether built or not; empty without the BIOS image).
find_image() {
  QEMU_COMMON_init
  MIRROR="$(debian_mirror)"
  HASH="$(image_hash)"
  IMAGE="$CACHE/boot-$HASH"
  UEFI_IMAGE=""
  if [[ -f "$IMAGE/id_ed25519.pub" ]]; then UEFI_IMAGE="$CACHE/boot-uefi-$(uefi_image_hash)"; fi
}

# OVMF_ARGS: qemu's options for OVMF (UEFI) with a fresh copy of its variables,
# STATE/NAME-OVMF_VARS.fd: no boot entry, the firmware boots a disk's EFI/BOOT/BOOTX64.EFI.
ovmf_args() { # NAME
  [[ -f "$OVMF_CODE" ]] || ensure_tool /nonexistent-ovmf ovmf
  [[ -f "$OVMF_CODE" && -f "$OVMF_VARS" ]] || die "no OVMF firmware ($OVMF_CODE; package ovmf)"
  install -m 0644 "$OVMF_VARS" "$STATE/$1-OVMF_VARS.fd"
  OVMF_ARGS=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
    -drive "if=pflash,format=raw,unit=1,file=$STATE/$1-OVMF_VARS.fd")
}

# ------------------------------------------------------------------------------- up, poweroff

pc_disk_args() { # ID FILE FORMAT CACHE SLOT [BOOTINDEX]
  printf '%s\n' -drive "file=$2,format=$3,if=none,id=$1,cache=$4,discard=unmap" \
    -device "virtio-blk-pci,drive=$1,addr=$5${6:+,bootindex=$6}"
}

# The origin of ORIGIN_FIRMWARE on overlays of ORIGIN_IMAGE's disks (cmd_up sets both).
start_origin() {
  local accel d args=() fw=()
  mapfile -t accel < <(accel_args)
  for d in a b c; do
    qemu-img create -q -f qcow2 -F qcow2 -b "$ORIGIN_IMAGE/origin-$d.qcow2" "$STATE/origin-disk-$d.qcow2"
  done
  # uefi: OVMF boots EFI/BOOT/BOOTX64.EFI from vda's ESP.
  if [[ "$ORIGIN_FIRMWARE" == uefi ]]; then
    ovmf_args origin
    fw=("${OVMF_ARGS[@]}")
  fi
  mapfile -t -O 0 args < <(pc_disk_args da "$STATE/origin-disk-a.qcow2" qcow2 unsafe 0x4 0)
  mapfile -t -O "${#args[@]}" args < <(pc_disk_args db "$STATE/origin-disk-b.qcow2" qcow2 unsafe 0x5)
  mapfile -t -O "${#args[@]}" args < <(pc_disk_args dc "$STATE/origin-disk-c.qcow2" qcow2 unsafe 0x6)
  : >"$STATE/origin-serial.log"
  # No -kernel: SeaBIOS boots GRUB from vda's MBR (or OVMF from its ESP).
  qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" -machine pc "${fw[@]}" \
    -name rmm-boot-origin,process=rmm-boot-origin "${args[@]}" \
    -netdev "user,id=n0,restrict=on,ipv6=off,net=$ORIGIN_NET,hostfwd=tcp:127.0.0.1:$ORIGIN_PORT-$ORIGIN_ADDRESS:22" \
    -device "virtio-net-pci,netdev=n0,mac=$ORIGIN_MAC,addr=0x3" \
    -serial "file:$STATE/origin-serial.log" -monitor none -qmp "unix:$STATE/origin-qmp.sock,server=on,wait=off" \
    -daemonize -pidfile "$STATE/origin.pid" 6>&- 7>&- 8>&- 9>&- ||
    die "qemu did not start the origin (is 127.0.0.1:$ORIGIN_PORT free? set RMM_BOOT_ORIGIN_PORT)"
}

origin_json() { # PID
  local disks
  disks="$(disk_json system "$STATE/origin-disk-a.qcow2" "$ORIGIN_IMAGE/origin-a.qcow2" /dev/vda "$DISK_A_SIZE"),
$(disk_json lvm "$STATE/origin-disk-b.qcow2" "$ORIGIN_IMAGE/origin-b.qcow2" /dev/vdb "$DISK_B_SIZE"),
$(disk_json asm "$STATE/origin-disk-c.qcow2" "$ORIGIN_IMAGE/origin-c.qcow2" /dev/vdc "$DISK_C_SIZE")"
  write_machine_json origin "$1" "$ORIGIN_HOSTNAME" "$ORIGIN_NET" "$ORIGIN_ADDRESS" pc "$ORIGIN_FIRMWARE" disk virtio-net-pci \
    "$ORIGIN_MAC" 00:03.0 "$PC_IFACE" "$disks"
}

# The landing: its own system disk, booted with the image's kernel, and two blank disks.
start_landing() {
  local accel args=()
  mapfile -t accel < <(accel_args)
  if ((KEEP_DISKS == 0)); then
    qemu-img create -q -f qcow2 -F qcow2 -b "$IMAGE/landing-root.qcow2" "$STATE/landing-root.qcow2"
    qemu-img create -q -f qcow2 "$STATE/landing-disk1.qcow2" "$LANDING_DISK1_SIZE"
    qemu-img create -q -f qcow2 "$STATE/landing-disk2.qcow2" "$LANDING_DISK2_SIZE"
  fi
  mapfile -t -O 0 args < <(pc_disk_args dr "$STATE/landing-root.qcow2" qcow2 unsafe 0x4)
  mapfile -t -O "${#args[@]}" args < <(pc_disk_args d1 "$STATE/landing-disk1.qcow2" qcow2 writeback 0x5)
  mapfile -t -O "${#args[@]}" args < <(pc_disk_args d2 "$STATE/landing-disk2.qcow2" qcow2 writeback 0x6)
  : >"$STATE/landing-serial.log"
  qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" -machine pc \
    -name rmm-boot-landing,process=rmm-boot-landing \
    -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
    -append "root=UUID=$(cat "$IMAGE/landing_root_uuid") rw console=ttyS0,115200" "${args[@]}" \
    -netdev "user,id=n0,restrict=on,ipv6=off,net=$LANDING_NET,hostfwd=tcp:127.0.0.1:$LANDING_PORT-$LANDING_ADDRESS:22" \
    -device "virtio-net-pci,netdev=n0,mac=$LANDING_MAC,addr=0x3" \
    -serial "file:$STATE/landing-serial.log" -monitor none -qmp "unix:$STATE/landing-qmp.sock,server=on,wait=off" \
    -daemonize -pidfile "$STATE/landing.pid" 6>&- 7>&- 8>&- 9>&- ||
    die "qemu did not start the landing (is 127.0.0.1:$LANDING_PORT free? set RMM_BOOT_LANDING_PORT)"
}

landing_json() { # PID
  local disks
  disks="$(disk_json system "$STATE/landing-root.qcow2" "$IMAGE/landing-root.qcow2" /dev/vda "$LANDING_ROOT_SIZE"),
$(disk_json target1 "$STATE/landing-disk1.qcow2" "" /dev/vdb "$LANDING_DISK1_SIZE"),
$(disk_json target2 "$STATE/landing-disk2.qcow2" "" /dev/vdc "$LANDING_DISK2_SIZE")"
  write_machine_json landing "$1" "$LANDING_HOSTNAME" "$LANDING_NET" "$LANDING_ADDRESS" pc bios kernel virtio-net-pci \
    "$LANDING_MAC" 00:03.0 "$PC_IFACE" "$disks"
}

# Stop NAME's qemu and remove its files (the state directory itself stays).
machine_down() { # NAME [keep-disks]
  local pid
  if pid="$(machine_pid "$1")"; then kill -TERM "$pid" 2>/dev/null || true; fi
  kill_qemu_naming "$STATE/$1-"
  rm -f "$STATE/$1".{json,json.tmp,pid,known_hosts,paused}
  [[ "${2:-}" == keep-disks ]] || rm -f "$STATE/$1"-*
}

cmd_up() { # origin [--firmware bios|uefi] | landing [--keep-disks]
  local name="${1:-}" started=$SECONDS boot pid hostkeys
  KEEP_DISKS=0
  ORIGIN_FIRMWARE=bios
  if [[ "$name" == origin && $# -ge 2 ]]; then
    ORIGIN_FIRMWARE="$(firmware_option "${@:2}")"
  elif [[ "$name" == landing && "${2:-}" == --keep-disks && $# -eq 2 ]]; then
    KEEP_DISKS=1
  elif [[ ( "$name" != origin && "$name" != landing ) || $# -gt 1 ]]; then
    die "usage: boot.sh up origin [--firmware bios|uefi], up landing [--keep-disks] (the replica: boot-replica)"
  fi
  need_root
  check_paths
  lock_machine 9 "$name"
  [[ "$name" == landing ]] && lock_machine 6 replica
  ensure_tools
  QEMU_COMMON_init
  ensure_image
  ORIGIN_IMAGE="$IMAGE"
  if [[ "$name" == origin && "$ORIGIN_FIRMWARE" == uefi ]]; then
    ensure_uefi_image
    ORIGIN_IMAGE="$UEFI_IMAGE"
  fi
  hostkeys="$IMAGE/${name}_host_keys"
  [[ "$name" == origin ]] && hostkeys="$ORIGIN_IMAGE/origin_host_keys"
  if ((KEEP_DISKS)); then
    machine_pid landing >/dev/null && die "the landing runs: power it off first (boot.sh poweroff landing)"
    for d in root disk1 disk2; do [[ -f "$STATE/landing-$d.qcow2" ]] || die "the landing has no disk $STATE/landing-$d.qcow2 to keep: boot.sh up landing"; done
    machine_down replica # it runs on the landing's disks
    machine_down landing keep-disks
  else
    machine_down "$name"
    [[ "$name" == landing ]] && machine_down replica # it runs on the landing's disks
  fi
  prepare_state "$name" "$(machine_port "$name")" "$hostkeys"
  boot=$SECONDS
  log "$name: booting ($ACCEL, ${CPUS} cpus, ${MEMORY}M$([[ "$name" == origin ]] && printf ', %s' "$ORIGIN_FIRMWARE")), ssh on 127.0.0.1:$(machine_port "$name")"
  "start_$name"
  pid="$(cat "$STATE/$name.pid")"
  wait_for_ssh "$name" "$pid" "$(machine_port "$name")" "$boot" yes
  "${name}_json" "$pid"
  printf 'rmm boot lab: %s up in %ss (ssh after %ss of boot): root@127.0.0.1 port %s; state %s/boot.json\n' \
    "$name" "$((SECONDS - started))" "$((SECONDS - boot))" "$(machine_port "$name")" "$STATE"
}

# Clean shutdown from inside, then wait for qemu to exit: the guest has flushed its disks.
cmd_poweroff() { # NAME
  local name="${1:-}" pid opts port started=$SECONDS
  [[ -n "$name" ]] || die "usage: boot.sh poweroff NAME"
  check_name "$name"
  need_root
  check_paths
  lock_machine 9 "$name"
  if ! pid="$(machine_pid "$name")"; then
    log "$name: not running"
    return 0
  fi
  port="$(recorded_port "$name")"
  mapfile -t opts < <(ssh_opts "$name" "$port")
  timeout 60 ssh "${opts[@]}" -l root 127.0.0.1 'systemctl poweroff' </dev/null >/dev/null 2>&1 || true
  while pid_running "$pid"; do
    if ((SECONDS - started >= POWEROFF_TIMEOUT)); then
      tail -n 40 "$STATE/$name-serial.log" >&2 || true
      die "$name did not power off in ${POWEROFF_TIMEOUT}s (serial log above); it still runs, pid $pid"
    fi
    sleep 1
  done
  rm -f "$STATE/$name.pid"
  if [[ -f "$STATE/$name.json" ]]; then
    sed -i 's/^      "pid": [0-9]*$/      "pid": null/' "$STATE/$name.json"
    find_image
    write_boot_json
  fi
  log "$name: powered off in $((SECONDS - started))s (its disks stay in $STATE)"
}

# One QMP exchange with NAME's qemu: capabilities, then each COMMAND (a JSON object) in turn; a
# human-monitor-command's text is printed. python3, as bash has no unix sockets.
qmp() { # NAME COMMAND...
  timeout 60 python3 - "$STATE/$1-qmp.sock" "${@:2}" <<'PY'
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(50)
sock.connect(sys.argv[1])
stream = sock.makefile('rw')
def answer():
    while True:
        line = stream.readline()
        if not line:
            sys.exit('qmp: qemu closed the monitor')
        message = json.loads(line)
        if 'error' in message:
            sys.exit('qmp: ' + message['error'].get('desc', 'error'))
        if 'return' in message:
            return message['return']
json.loads(stream.readline())
for command in ['{"execute": "qmp_capabilities"}'] + sys.argv[2:]:
    stream.write(command + '\n')
    stream.flush()
    result = answer()
    if isinstance(result, str):
        sys.stdout.write(result)
PY
}

# One human monitor command (no quotes or backslashes in it) through QMP; its text.
hmp() { # NAME COMMAND-LINE
  qmp "$1" "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"$2\"}}"
}

running_machine() { # NAME (origin or landing): its qemu pid, or die
  local pid
  [[ "$1" == origin || "$1" == landing ]] || die "$2 works on origin or landing: '$1'"
  pid="$(machine_pid "$1")" || die "$1 is not running"
  printf '%s\n' "$pid"
}

# Stop NAME's virtual CPUs: it answers nothing and writes nothing; qemu has flushed its disks to
# their files first. boot-replica boots the landing's disks while it is paused, which saves a
# shutdown and a boot of the landing per replica boot.
cmd_pause() { # NAME
  local name="${1:-}" opts
  running_machine "$name" pause >/dev/null
  need_root
  check_paths
  lock_machine 9 "$name"
  mapfile -t opts < <(ssh_opts "$name" "$(recorded_port "$name")")
  timeout 120 ssh "${opts[@]}" -l root 127.0.0.1 sync </dev/null >/dev/null 2>&1 || die "$name: sync inside it failed"
  qmp "$name" '{"execute": "stop"}' >/dev/null || die "$name: qemu did not stop"
  : >"$STATE/$name.paused"
  log "$name: paused (disks flushed; boot.sh resume $name)"
}

cmd_resume() { # NAME
  local name="${1:-}" pid
  pid="$(running_machine "$name" resume)"
  need_root
  check_paths
  lock_machine 9 "$name"
  qmp "$name" '{"execute": "cont"}' >/dev/null || die "$name: qemu did not resume"
  rm -f "$STATE/$name.paused"
  wait_for_ssh "$name" "$pid" "$(recorded_port "$name")" "$SECONDS" yes
  log "$name: resumed"
}

# NAME's site goes down, or comes back: qemu stops forwarding its ssh port (a connection is refused,
# as by a host that is gone) while the machine runs on; `link-up` forwards it again.
cmd_link() { # up|down NAME
  local state="$1" name="${2:-}" port address out
  running_machine "$name" "link-$state" >/dev/null
  need_root
  check_paths
  lock_machine 9 "$name"
  port="$(recorded_port "$name")"
  address="$(sed -n 's/^      "guestAddress": "\([0-9.]*\)",$/\1/p' "$STATE/$name.json")"
  [[ -n "$address" ]] || die "$name: no guestAddress in $STATE/$name.json"
  # qemu answers hostfwd_remove with "... removed", and hostfwd_add with nothing when it worked.
  if [[ "$state" == down ]]; then
    out="$(hmp "$name" "hostfwd_remove n0 tcp:127.0.0.1:$port")" || die "$name: qemu did not remove its port forward"
    [[ "$out" == *removed* ]] || die "$name: link-down: qemu says: $out"
  else
    out="$(hmp "$name" "hostfwd_add n0 tcp:127.0.0.1:$port-$address:22")" || die "$name: qemu did not forward its port again"
    [[ -z "$out" ]] || die "$name: link-up: qemu says: $out"
    wait_for_ssh "$name" "$(machine_pid "$name")" "$port" "$SECONDS" yes
  fi
  log "$name: link $state (127.0.0.1:$port)"
}

# ------------------------------------------------------------------------------------ replica

cmd_boot_replica() {
  local firmware=bios net="$REPLICA_NET" address="" mac="$REPLICA_MAC" wait=1 started=$SECONDS
  local accel fw=() pid key_line origin_keys from_origin=false boot slice1="" slice2="" s d disk_args=()
  while (($#)); do
    case "$1" in
      --firmware) firmware="${2:-}"; shift 2 ;;
      --net) net="${2:-}"; shift 2 ;;
      --address) address="${2:-}"; shift 2 ;;
      --port | --gateway-port) REPLICA_PORT="${2:-}"; shift 2 ;;
      --mac) mac="${2:-}"; shift 2 ;;
      --slice1) slice1="${2:-}"; shift 2 ;;
      --slice2) slice2="${2:-}"; shift 2 ;;
      --no-wait) wait=0; shift ;;
      *) die "boot-replica: unknown option '$1'" ;;
    esac
  done
  [[ "$firmware" == bios || "$firmware" == uefi ]] || die "--firmware must be bios or uefi: '$firmware'"
  check_cidr "$net"
  address="${address:-$(net_host "$net" 15)}"
  [[ "$address" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "--address must be an IPv4 address: '$address'"
  [[ "$mac" =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || die "--mac must be a MAC address: '$mac'"
  for s in "$slice1" "$slice2"; do
    [[ -z "$s" || "$s" =~ ^[0-9]{1,15}:[0-9]{1,15}$ ]] || die "--sliceN must be OFFSET:SIZE in bytes: '$s'"
  done
  need_root
  check_paths
  lock_machine 9 replica
  lock_machine 6 landing
  ensure_tools
  find_image
  if pid="$(machine_pid landing)" && [[ ! -f "$STATE/landing.paused" ]]; then
    die "the landing still runs (pid $pid): pause it or power it off first (boot.sh pause landing), its disks must be flushed"
  fi
  [[ -f "$STATE/landing-disk1.qcow2" && -f "$STATE/landing-disk2.qcow2" ]] ||
    die "no landing disks in $STATE (boot.sh up landing, write them, boot.sh poweroff landing)"
  [[ -f "$STATE/id_ed25519" ]] || die "no client key in $STATE (boot.sh up landing first)"
  machine_down replica
  : >"$STATE/replica.known_hosts"
  # -u: the paused landing holds its disks' locks; its files are only read, and it writes nothing
  # while paused.
  qemu-img create -q -u -f qcow2 -F qcow2 -b "$STATE/landing-disk1.qcow2" "$STATE/replica-disk1.qcow2" "$LANDING_DISK1_SIZE"
  qemu-img create -q -u -f qcow2 -F qcow2 -b "$STATE/landing-disk2.qcow2" "$STATE/replica-disk2.qcow2" "$LANDING_DISK2_SIZE"
  if [[ "$firmware" == uefi ]]; then
    ovmf_args replica
    fw=("${OVMF_ARGS[@]}")
  fi
  # A disk, or with --sliceN a byte range of it (a logical volume the landing wrote, where its
  # extents lie on the landing disk): the replica sees only that range, as a whole disk.
  # The landing's disk is read without its lock (the paused landing holds it), under the replica's
  # own overlay.
  for d in 1 2; do
    if [[ "$d" == 1 ]]; then s="$slice1"; else s="$slice2"; fi
    disk_args+=(-blockdev "driver=qcow2,node-name=l$d,read-only=on,file.driver=file,file.filename=$STATE/landing-disk$d.qcow2,file.locking=off"
      -blockdev "driver=qcow2,node-name=q$d,backing=l$d,discard=unmap,cache.no-flush=on,file.driver=file,file.filename=$STATE/replica-disk$d.qcow2")
    if [[ -z "$s" ]]; then
      disk_args+=(-blockdev "driver=raw,node-name=d$d,file=q$d")
    else
      disk_args+=(-blockdev "driver=raw,node-name=d$d,file=q$d,offset=${s%%:*},size=${s#*:}")
    fi
  done
  mapfile -t accel < <(accel_args)
  QEMU_COMMON_init
  : >"$STATE/replica-serial.log"
  boot=$SECONDS
  log "replica: booting the landing's disks on q35/AHCI/e1000e ($firmware), ssh 127.0.0.1:$REPLICA_PORT -> $address:22"
  qemu-system-x86_64 "${accel[@]}" "${QEMU_COMMON[@]}" -machine q35 "${fw[@]}" \
    -name rmm-boot-replica,process=rmm-boot-replica \
    -device ahci,id=ahci,bus=pcie.0,addr=0x4 "${disk_args[@]}" \
    -device ide-hd,bus=ahci.0,drive=d1,bootindex=0 \
    -device ide-hd,bus=ahci.1,drive=d2 \
    -netdev "user,id=n0,restrict=on,ipv6=off,net=$net,hostfwd=tcp:127.0.0.1:$REPLICA_PORT-$address:22" \
    -device "e1000e,netdev=n0,mac=$mac,bus=pcie.0,addr=0x3" \
    -serial "file:$STATE/replica-serial.log" -monitor none \
    -daemonize -pidfile "$STATE/replica.pid" 6>&- 7>&- 8>&- 9>&- ||
    die "qemu did not start the replica (is 127.0.0.1:$REPLICA_PORT free? set RMM_BOOT_REPLICA_PORT or --port)"
  pid="$(cat "$STATE/replica.pid")"
  ((wait)) && wait_for_ssh replica "$pid" "$REPLICA_PORT" "$boot" accept-new
  # Whether the replica kept the origin's host keys (known_hosts learnt them on first contact): the
  # BIOS origin's or the UEFI origin's, whichever was copied.
  key_line="$(awk '{ print $2, $3; exit }' "$STATE/replica.known_hosts")"
  for origin_keys in "$IMAGE/origin_host_keys" ${UEFI_IMAGE:+"$UEFI_IMAGE/origin_host_keys"}; do
    if [[ -n "$key_line" && -f "$origin_keys" ]] && grep -qxF "$key_line" "$origin_keys"; then from_origin=true; fi
  done
  write_machine_json replica "$pid" "" "$net" "$address" q35 "$firmware" disk e1000e "$mac" 00:03.0 "$REPLICA_IFACE" \
    "$(disk_json sda "$STATE/replica-disk1.qcow2" "$STATE/landing-disk1.qcow2" /dev/sda "$LANDING_DISK1_SIZE"),
$(disk_json sdb "$STATE/replica-disk2.qcow2" "$STATE/landing-disk2.qcow2" /dev/sdb "$LANDING_DISK2_SIZE")" \
    "      \"sshAnswered\": $([[ $wait == 1 ]] && echo true || echo false),
      \"hostKeysFromOrigin\": $from_origin,"
  if ((wait)); then
    printf 'rmm boot lab: replica up in %ss (ssh after %ss of boot): root@127.0.0.1 port %s; state %s/boot.json\n' \
      "$((SECONDS - started))" "$((SECONDS - boot))" "$REPLICA_PORT" "$STATE"
  else
    printf 'rmm boot lab: replica started (pid %s, serial log %s/replica-serial.log)\n' "$pid" "$STATE"
  fi
}

# -------------------------------------------------------------------------- down, status, ssh

cmd_down() { # [NAME|all]
  local name="${1:-all}" m started=$SECONDS
  [[ "$name" == all ]] || check_name "$name"
  need_root
  check_paths
  if [[ "$name" == all ]]; then
    lock_machine 9 origin
    lock_machine 6 landing
    lock_machine 5 replica
    kill_qemu_naming "$STATE/"
    for m in $MACHINES; do machine_down "$m"; done
    rm -f "$STATE"/{boot.json,boot.json.tmp,id_ed25519,id_ed25519.pub}
    rmdir "$STATE" 2>/dev/null || true
    log "down: no machine remains ($((SECONDS - started))s)"
    return
  fi
  lock_machine 9 "$name"
  machine_down "$name"
  [[ "$name" == landing ]] && { lock_machine 6 replica; machine_down replica; }
  find_image
  write_boot_json
  log "down: $name stopped and removed ($((SECONDS - started))s)"
}

cmd_status() {
  local m pid
  for m in $MACHINES; do
    if pid="$(machine_pid "$m")"; then
      echo "$m: up, qemu pid $pid, ssh 127.0.0.1:$(recorded_port "$m"), state $STATE"
    elif [[ -f "$STATE/$m.json" ]]; then
      echo "$m: powered off, disks in $STATE"
    else
      echo "$m: down"
    fi
  done
}

cmd_ssh() { # NAME [USER] [CMD...]
  local name="${1:-}" user=root opts
  [[ -n "$name" ]] || die "usage: boot.sh ssh NAME [USER] [CMD...]"
  check_name "$name"
  shift
  if [[ "${1:-}" == root || "${1:-}" == "$LAB_USER" ]]; then
    user="$1"
    shift
  fi
  [[ -f "$STATE/$name.json" ]] || die "$name is not up (boot.sh up $name)"
  mapfile -t opts < <(ssh_opts "$name" "$(recorded_port "$name")")
  exec ssh "${opts[@]}" -l "$user" 127.0.0.1 "$@"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    deps) cmd_deps ;;
    image) cmd_image "$@" ;;
    up) cmd_up "$@" ;;
    poweroff) cmd_poweroff "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    ssh) cmd_ssh "$@" ;;
    boot-replica) cmd_boot_replica "$@" ;;
    pause) cmd_pause "$@" ;;
    resume) cmd_resume "$@" ;;
    link-down) cmd_link down "$@" ;;
    link-up) cmd_link up "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
