#!/usr/bin/env bash
# Installs, from Debian's archive, everything the build, the tests, the demo
# and the pod tests need. Idempotent; needs root. Used by scripts/test.sh,
# scripts/demo.sh and .ci/run.
set -euo pipefail

usage() {
    echo "usage: $0 [--build-only]" >&2
    echo "  --build-only   only the compiler and libraries (no sshd, Slurm, podman)" >&2
    exit 2
}

build_only=false
case "${1:-}" in
    "") ;;
    --build-only) build_only=true ;;
    *) usage ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "$0: must run as root (apt-get install, and the tests start sshd, munge and Slurm)" >&2
    exit 1
fi

packages=(
    # build
    cmake ninja-build g++ pkg-config
    libssh-dev libboost-dev libboost-system-dev nlohmann-json3-dev libcli11-dev libfmt-dev
    libtomlplusplus-dev catch2
)
if ! $build_only; then
    packages+=(
        # the real login host of the tests: sshd, sudo, munge, Slurm
        openssh-server openssh-client sudo munge slurm-wlm iproute2 procps
        # python_shim tests (Debian's interpreter and packages)
        python3 python3-pytest python3-venv python3-setuptools python3-pip python3-yaml jupyterhub
        # hub tests (tests/hub): the notebook server and kernel, the kernel's websocket
        python3-notebook python3-ipykernel python3-websocket
        # hub.brics: bricsauthenticator's JWT checks and the test's token signing
        python3-jwt python3-cryptography
        # metrics tests: promtool (rule and exposition checks), Prometheus' text parser
        prometheus python3-prometheus-client
        # screenshots of the notebook page (hub.notebook, pods.environments)
        chromium
        # build backends of the supporting packages (scripts/install-support-packages.sh)
        python3-setuptools-scm python3-wheel
        # the thousand-user benchmark's curve (tests/bench/ssbbench/plot.py)
        python3-matplotlib
        # linting, sanitizers and fuzzing
        shellcheck python3-pyflakes clang libclang-rt-14-dev clang-format clang-tidy
        # pods
        podman runc catatonit debootstrap
        # the Debian package (tests/packaging): dpkg-buildpackage, lintian, man -w
        debhelper lintian man-db
    )
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
