#!/bin/bash
# Build local substitutes for the upstream base images from Debian's archive,
# for machines that cannot reach a container registry.
#
#   localhost/ssb-offline/debian:bookworm      debootstrap --variant=minbase rootfs
#   localhost/ssb-offline/jupyterhub:bookworm  stands in for quay.io/jupyterhub/jupyterhub
#   localhost/ssb-offline/slurm:bookworm       stands in for docker.io/nathanhess/slurm
#
# Usage: build_offline_bases.sh [--rebuild] [--print-names]
#   --rebuild      rebuild even if the images exist already
#   --print-names  print "debian=… jupyterhub=… slurm=…" and exit
# Environment:
#   SSB_DEBIAN_MIRROR  Debian mirror URL (default: the URIs: of this machine's
#                      /etc/apt/sources.list.d/debian.sources, else the first
#                      "deb" line of /etc/apt/sources.list)
#   SSB_DEBIAN_SUITE   default bookworm
# Needs root, debootstrap, podman, tar.
set -euo pipefail
export SSB_PROG=build_offline_bases.sh
# shellcheck source=/dev/null
. "$(dirname "${BASH_SOURCE[0]}")/../../environments/lib/common.sh"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

SUITE=${SSB_DEBIAN_SUITE:-bookworm}
DEBIAN_IMAGE="localhost/ssb-offline/debian:${SUITE}"
JUPYTERHUB_IMAGE="localhost/ssb-offline/jupyterhub:${SUITE}"
SLURM_IMAGE="localhost/ssb-offline/slurm:${SUITE}"
REBUILD=0
while (($#)); do
  case $1 in
    --rebuild) REBUILD=1 ;;
    --print-names) printf 'debian=%s jupyterhub=%s slurm=%s\n' "$DEBIAN_IMAGE" "$JUPYTERHUB_IMAGE" "$SLURM_IMAGE"; exit 0 ;;
    -h|--help) usage ;;
    *) ssb_log "unknown argument: $1"; usage ;;
  esac
  shift
done

ssb_require_cmd podman tar
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# debian_mirror: the mirror this machine's apt already uses.
debian_mirror() {
  if [[ -n ${SSB_DEBIAN_MIRROR:-} ]]; then printf '%s\n' "$SSB_DEBIAN_MIRROR"; return; fi
  local f=/etc/apt/sources.list.d/debian.sources uri
  if [[ -f $f ]]; then
    # First stanza whose Suites: names the plain suite; take its first URI.
    uri=$(awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (u != "" && s) { print u; exit } u=""; s=0; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) s=1 }
      END { if (u != "" && s) print u }' "$f" | head -n1)
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return; fi
  fi
  if [[ -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return; fi
  fi
  ssb_die "cannot find a Debian mirror in /etc/apt; set SSB_DEBIAN_MIRROR"
}

image_exists() { podman image exists "$1"; }

build_debian() {
  if ((REBUILD == 0)) && image_exists "$DEBIAN_IMAGE"; then
    ssb_log "using existing ${DEBIAN_IMAGE}"
    return
  fi
  ssb_require_cmd debootstrap
  [[ $(id -u) == 0 ]] || ssb_die "debootstrap needs root"
  local mirror rootfs
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/ssb-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf -- '${rootfs}'" EXIT
  ssb_log "debootstrap --variant=minbase ${SUITE} from ${mirror} (about 30 s)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"${rootfs}.log" 2>&1 || {
    tail -n 20 "${rootfs}.log" >&2; rm -f "${rootfs}.log"; ssb_die "debootstrap failed"; }
  rm -f "${rootfs}.log"
  # Same apt sources as this machine (so the images see the same archive).
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    cp /etc/apt/sources.list.d/debian.sources "${rootfs}/etc/apt/sources.list.d/debian.sources"
    rm -f "${rootfs}/etc/apt/sources.list"
  fi
  # Keep images small: no recommends, no docs/man pages/locales from later installs.
  cat >"${rootfs}/etc/apt/apt.conf.d/90ssb-small" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CONF
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/90ssb-nodoc" <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF
  rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"* \
    "${rootfs}/usr/share/man/"* "${rootfs}/usr/share/info/"*
  ssb_log "importing ${DEBIAN_IMAGE}"
  tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf -- "$rootfs"
  trap - EXIT
}

build_from() {
  local image=$1 file=$2
  if ((REBUILD == 0)) && image_exists "$image"; then
    ssb_log "using existing ${image}"
    return
  fi
  ssb_log "building ${image} from ${file##*/}"
  podman build --network host --pull=never --build-arg "DEBIAN_IMAGE=${DEBIAN_IMAGE}" \
    -f "$file" -t "$image" "$HERE" >&2
}

start=$SECONDS
build_debian
build_from "$JUPYTERHUB_IMAGE" "${HERE}/Containerfile.jupyterhub"
build_from "$SLURM_IMAGE" "${HERE}/Containerfile.slurm"
ssb_log "offline base images ready in $((SECONDS - start)) s: ${DEBIAN_IMAGE} ${JUPYTERHUB_IMAGE} ${SLURM_IMAGE}"
