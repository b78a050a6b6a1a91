#!/bin/sh
# Copy an executable and the shared libraries it loads (except the C library
# family, which every base image has) into OUT/opt/slurm-ssh-bridge/{bin,lib},
# point its RPATH at ../lib and link it from OUT/usr/local/bin.
# Usage: collect-runtime.sh EXECUTABLE OUT
set -eu
exe=$1
out=$2
name=$(basename "$exe")
prefix=/opt/slurm-ssh-bridge
mkdir -p "$out$prefix/bin" "$out$prefix/lib" "$out/usr/local/bin"
cp "$exe" "$out$prefix/bin/$name"
ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
  base=$(basename "$lib")
  case $base in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libanl.so.*|ld-linux*)
      continue ;;
  esac
  cp -L "$lib" "$out$prefix/lib/$base"
done
# DT_RPATH (not RUNPATH) so the bundled libraries also find each other.
patchelf --force-rpath --set-rpath "\$ORIGIN/../lib" "$out$prefix/bin/$name"
strip --strip-unneeded "$out$prefix/bin/$name" 2>/dev/null || true
ln -sf "$prefix/bin/$name" "$out/usr/local/bin/$name"
echo "collected $name with:" "$out$prefix"/lib/*
