#!/bin/bash
# Change detection between two read-only btrfs snapshots, without walking the tree, against a walk.
# Run inside the bench lab's origin (data on /bench/btrfs), one step at a time:
#   lab=(env RMM_LAB_ID=2 bash lab/lab.sh exec origin --)
#   cp bench/experiments/btrfs-change-detection.sh /run/rmm-lab2/hosts/origin/root/tmp/
#   "${lab[@]}" bash /tmp/btrfs-change-detection.sh A   # snapshot A
#   "${lab[@]}" bash /tmp/btrfs-change-detection.sh B   # snapshot B (nothing changed): send --no-data, find-new, find
#   (change files, e.g. the re-sync change set: bench/lib/data.mjs modify())
#   "${lab[@]}" bash /tmp/btrfs-change-detection.sh C   # snapshot C (changed): the same
#   "${lab[@]}" bash /tmp/btrfs-change-detection.sh D   # delete the snapshots
cd /bench/btrfs || exit 1
t() { local s=$EPOCHREALTIME; "$@"; local e=$EPOCHREALTIME; awk -v a="$s" -v b="$e" 'BEGIN { printf "  %.3f s\n", b - a }' >&2; }
case "$1" in
A) btrfs subvolume snapshot -r /bench/btrfs /bench/btrfs/.snapA >/dev/null ;;
B) btrfs subvolume snapshot -r /bench/btrfs /bench/btrfs/.snapB >/dev/null
   echo "unchanged: btrfs send --no-data -p A B | btrfs receive --dump, lines:" >&2
   t sh -c 'btrfs send -q --no-data -p .snapA .snapB | btrfs receive --dump | wc -l'
   gen=$(btrfs subvolume find-new .snapA 999999999 | awk '{ print $NF }')
   echo "unchanged: btrfs subvolume find-new B since A's generation $gen, lines:" >&2
   t sh -c "btrfs subvolume find-new .snapB $gen | wc -l"
   echo "walk of B (find -printf size, mtime), entries:" >&2
   t sh -c 'find .snapB -printf "%s %T@\n" | wc -l' ;;
C) btrfs subvolume snapshot -r /bench/btrfs /bench/btrfs/.snapC >/dev/null
   echo "changed: send --no-data -p B C | receive --dump, distinct paths:" >&2
   t sh -c 'btrfs send -q --no-data -p .snapB .snapC | btrfs receive --dump | awk "{ print \$2 }" | sort -u | wc -l'
   gen=$(btrfs subvolume find-new .snapB 999999999 | awk '{ print $NF }')
   echo "changed: find-new C since B's generation $gen, distinct inodes:" >&2
   t sh -c "btrfs subvolume find-new .snapC $gen | awk '/^inode/ { print \$2 }' | sort -u | wc -l"
   echo "walk of C, entries:" >&2
   t sh -c 'find .snapC -printf "%s %T@\n" | wc -l' ;;
D) for s in .snapA .snapB .snapC; do [ -d "$s" ] && btrfs subvolume delete "$s" >/dev/null; done; true ;;
*) echo "usage: $0 A|B|C|D" >&2; exit 2 ;;
esac
