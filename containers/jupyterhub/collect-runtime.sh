#!/bin/sh
# Copy an executable and the shared libraries it loads (except the C library
# family, which every base image has) into OUT/opt/slurm-ssh-bridge/{bin,lib},
# point its RPATH at ../lib and link it from OUT/usr/local/bin.
# slurm-ssh-bridge loads libssh with dlopen (so ldd does not list it); the
# second line of its --version names the library, which is copied with its
# own dependencies.
# Usage: collect-runtime.sh EXECUTABLE OUT
set -eu
exe=$1
out=$2
name=$(basename "$exe")
prefix=/opt/slurm-ssh-bridge
mkdir -p "$out$prefix/bin" "$out$prefix/lib" "$out/usr/local/bin"
cp "$exe" "$out$prefix/bin/$name"

copy_lib() {
  base=$(basename "$1")
  case $base in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libanl.so.*|ld-linux*)
      return 0 ;;
  esac
  cp -L "$1" "$out$prefix/lib/$base"
}

# Every library FILE needs, then FILE itself when it is a library.
copy_with_deps() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    copy_lib "$lib"
  done
}

copy_with_deps "$exe"
soname=$("$exe" --version | sed -n 's/^libssh: \([^ ]*\).*/\1/p')
if [ -n "$soname" ]; then
  path=$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64|64bit|AArch64/ { print $NF; exit }')
  if [ -z "$path" ]; then
    echo "collect-runtime.sh: $name loads $soname, which ldconfig cannot find here; install libssh" >&2
    exit 1
  fi
  copy_lib "$path"
  copy_with_deps "$path"
fi
# DT_RPATH (not RUNPATH) so the bundled libraries, and the one dlopen loads,
# also find each other.
patchelf --force-rpath --set-rpath "\$ORIGIN/../lib" "$out$prefix/bin/$name"
strip --strip-unneeded "$out$prefix/bin/$name" 2>/dev/null || true
ln -sf "$prefix/bin/$name" "$out/usr/local/bin/$name"
echo "collected $name with:" "$out$prefix"/lib/*
