/**
 * The shell scripts a disks target runs on its landing host, as root. Every file written into the
 * copy is written from inside a chroot of it: a symbolic link in the copy then resolves inside the
 * copy, never to the landing host's own files.
 */

// in CMD...: runs CMD in the copy with a clean environment (the landing host's variables mean nothing there).
const IN_COPY = `in_copy() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C GRUB_DISABLE_OS_PROBER=true "$@"; }`;

// What the copy's tools need mounted: the landing host's devices, proc and sys; a /run of its own.
// rslave: unmounting the copy later must never reach the landing host's own /dev mounts.
const BIND = `for d in dev proc sys; do
  mountpoint -q -- "$root/$d" && continue
  mkdir -p -- "$root/$d"
  mount --rbind "/$d" "$root/$d"
  mount --make-rslave "$root/$d"
done
if ! mountpoint -q -- "$root/run"; then mkdir -p -- "$root/run" && mount -t tmpfs -o mode=0755 rmm-run "$root/run"; fi`;

// $1 the mount root, then for each filesystem in mount order: device, path below the root (. for
// the root), type, volume group or ''. What a killed run left mounted there is unmounted first. A
// mount point reached through a symbolic link of the copy is refused: it would mount outside it.
export const MOUNT = `set -e
root=$1; shift
if mountpoint -q -- "$root"; then umount -R -- "$root"; fi
mkdir -p -- "$root"
while [ $# -ge 4 ]; do
  dev=$1 rel=$2 type=$3 vg=$4; shift 4
  if [ -n "$vg" ]; then vgchange -ay -- "$vg" >/dev/null; fi
  if [ "$rel" = . ]; then at=$root; else at=$root/$rel; fi
  mkdir -p -- "$at"
  if [ "$(realpath -e -- "$at")" != "$at" ]; then echo "$at is reached through a symbolic link in the copy" >&2; exit 3; fi
  # xfs refuses a second filesystem with one UUID, and the copy keeps the origin's.
  if [ "$type" = xfs ]; then mount -t xfs -o nouuid -- "$dev" "$at"; else mount -t "$type" -- "$dev" "$at"; fi
done`;

// $1 the mount root: everything below it unmounted, written out first.
export const UNMOUNT = `root=$1
[ -d "$root" ] || exit 0
sync -f -- "$root" 2>/dev/null || :
if mountpoint -q -- "$root"; then umount -R -- "$root" || exit 1; fi
rmdir -- "$root" 2>/dev/null || :`;

// $1 the mount root, $2 bios|uefi, $3 the disk for GRUB (BIOS), $4 the ESP's mount point (UEFI),
// then the versions of the kernels the origin has (none: no kernel is removed).
// The copy's own GRUB, installed for the target's firmware; UEFI also at the removable-media path
// (EFI/BOOT/BOOTX64.EFI), which firmware without a boot entry falls back to, and never into the
// landing host's NVRAM. Its configuration is made anew in the copy: root by UUID, no other OS.
// The copy never deletes a kernel (src/plan/disks.ts KERNEL_FILES): those the origin no longer has
// are removed once a configuration holds the origin's, then the configuration is made again. Only
// when one of the origin's kernels is in the copy; each removed one is printed.
export const BOOTLOADER = `set -e
root=$1 fw=$2 disk=$3 efi=$4; shift 4
${IN_COPY}
${BIND}
if in_copy sh -c 'command -v grub-install' >/dev/null; then inst=grub-install mk=grub-mkconfig cfg=/boot/grub/grub.cfg
elif in_copy sh -c 'command -v grub2-install' >/dev/null; then inst=grub2-install mk=grub2-mkconfig cfg=/boot/grub2/grub.cfg
else echo "the copy has no GRUB (grub-install or grub2-install): install its package on the origin" >&2; exit 3; fi
if [ "$fw" = bios ]; then
  in_copy "$inst" --target=i386-pc "$disk"
else
  in_copy "$inst" --target=x86_64-efi --efi-directory="$efi" --no-nvram
  in_copy "$inst" --target=x86_64-efi --efi-directory="$efi" --no-nvram --removable
fi
configure() { if in_copy sh -c 'command -v update-grub' >/dev/null; then in_copy update-grub; else in_copy "$mk" -o "$cfg"; fi; }
configure >&2
[ $# -gt 0 ] || exit 0
gone=$(in_copy sh -c 'mine=
  for k in "$@"; do [ -f "/boot/vmlinuz-$k" ] && mine=1; done
  [ -n "$mine" ] || exit 0
  for f in /boot/vmlinuz-*; do
    [ -f "$f" ] || continue
    k=\${f#/boot/vmlinuz-} keep=
    case $k in ""|.*|*[!A-Za-z0-9._+~-]*) continue ;; esac
    for o in "$@"; do [ "$o" = "$k" ] && keep=1; done
    [ -n "$keep" ] || printf "%s\\n" "$k"
  done' rmm-kernels "$@")
[ -n "$gone" ] || exit 0
for k in $gone; do
  in_copy rm -rf -- "/boot/vmlinuz-$k" "/boot/config-$k" "/boot/System.map-$k" "/boot/initrd.img-$k" "/boot/initramfs-$k.img" "/lib/modules/$k" "/usr/lib/modules/$k"
  printf 'removed %s\\n' "$k"
done
configure >&2`;

// What an initramfs is made of, as one sha256: the drivers asked for, the kernels, the packages
// installed (their hooks and binaries go in), the initramfs configuration, fstab and crypttab, and
// the kernels' and images' own bytes. Read inside the copy.
const INITRAMFS_INPUTS = `inputs() { in_copy sh -c 'export LC_ALL=C
  printf "%s\\n" "$@"; ls /lib/modules
  { find /etc/initramfs-tools /etc/dracut.conf /etc/dracut.conf.d /var/lib/dpkg/status /var/lib/rpm /usr/lib/sysimage/rpm /etc/fstab /etc/crypttab -type f 2>/dev/null
    find /boot -maxdepth 1 -type f \\( -name "vmlinuz-*" -o -name "initrd.img-*" -o -name "initramfs-*.img" \\); } | sort | xargs -r -d "\\n" sha256sum' rmm-inputs "$@" | sha256sum; }`;

// $1 the stamp file (on the landing host, beside the record), $2 the mount root, then driver names.
// The initramfs of every kernel of the copy made with those drivers its kernels have, generic rather
// than fitted to the landing host: initramfs-tools with MODULES=most and the drivers listed in
// /etc/initramfs-tools/modules, or dracut with hostonly=no and add_drivers (--regenerate-all makes
// one for each kernel in /lib/modules). Nothing is rebuilt when nothing it is made of changed since
// the stamp was written (under software emulation a rebuild takes minutes): prints "unchanged".
export const INITRAMFS = `set -e
stamp=$1 root=$2; shift 2
${IN_COPY}
${BIND}
${INITRAMFS_INPUTS}
have=
for d in "$@"; do
  for k in $(in_copy ls /lib/modules); do
    if in_copy modinfo -k "$k" -F filename "$d" >/dev/null 2>&1; then have="$have $d"; break; fi
  done
done
if in_copy sh -c 'command -v update-initramfs' >/dev/null; then
  in_copy sh -c 'f=/etc/initramfs-tools/modules; touch "$f"; new=; for d in "$@"; do grep -qx -- "$d" "$f" || new="$new $d"; done
    [ -z "$new" ] || { echo "# added by rmm: drivers other hardware may need"; printf "%s\\n" $new; } >> "$f"' rmm-modules $have
  in_copy sh -c 'mkdir -p /etc/initramfs-tools/conf.d && echo "MODULES=most # set by rmm: an initramfs for any hardware" > /etc/initramfs-tools/conf.d/rmm-replica'
  if [ -f "$stamp" ] && [ "$(cat -- "$stamp")" = "$(inputs $have)" ]; then echo unchanged; exit 0; fi
  # The copy holds no initramfs images of its own (the copy keeps them out): one is made for each
  # kernel, and those of kernels gone are removed (inside the copy: its links resolve there).
  in_copy sh -c 'set -e
    for k in $(ls /lib/modules); do
      [ -f "/boot/vmlinuz-$k" ] || continue
      if [ -f "/boot/initrd.img-$k" ]; then update-initramfs -u -k "$k"; else update-initramfs -c -k "$k"; fi
    done
    for f in /boot/initrd.img-*; do
      if [ -f "$f" ] && [ ! -e "/boot/vmlinuz-\${f#/boot/initrd.img-}" ]; then rm -f -- "$f"; fi
    done' >&2
elif in_copy sh -c 'command -v dracut' >/dev/null; then
  in_copy sh -c 'mkdir -p /etc/dracut.conf.d && printf "# set by rmm: an initramfs for any hardware\\nhostonly=\\"no\\"\\nadd_drivers+=\\" %s \\"\\n" "$1" > /etc/dracut.conf.d/rmm-replica.conf' rmm-dracut "$have"
  if [ -f "$stamp" ] && [ "$(cat -- "$stamp")" = "$(inputs $have)" ]; then echo unchanged; exit 0; fi
  # --no-hostonly on the command line too: an origin's own dracut.conf.d may sort after rmm's file.
  in_copy dracut -f --regenerate-all --no-hostonly >&2
else
  echo "the copy has neither update-initramfs nor dracut" >&2; exit 3
fi
mkdir -p -- "\${stamp%/*}"
inputs $have > "$stamp.new" && mv -f -- "$stamp.new" "$stamp"`;
