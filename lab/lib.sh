# Shell functions shared by lab.sh and guest.sh. Sourced, not run: the caller defines die() and
# IMAGE_SUITE first.

# The Debian mirror apt on this machine uses for $IMAGE_SUITE (deb822 sources first).
debian_mirror() {
  if [[ -n "${RMM_LAB_MIRROR:-}" ]]; then
    printf '%s\n' "$RMM_LAB_MIRROR"
    return
  fi
  local f url
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    url="$(awk -v suite="$IMAGE_SUITE" '
      function flush() {
        if (index(" " types " ", " deb ") && index(" " suites " ", " " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = suites = uris = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:"   { $1 = ""; uris = $0 }
      END { if (!found) flush() }' "$f")"
    [[ -n "$url" ]] && { printf '%s\n' "$url"; return; }
  done
  if [[ -f /etc/apt/sources.list ]]; then
    url="$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
      awk -v suite="$IMAGE_SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')"
    [[ -n "$url" ]] && { printf '%s\n' "$url"; return; }
  fi
  die "no Debian mirror for $IMAGE_SUITE in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set RMM_LAB_MIRROR)"
}
