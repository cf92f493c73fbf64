#!/bin/sh
# tests/tsan-libzmq.sh DIR - build the machine's own libzmq (Debian's
# source package of the installed libzmq5, same version and patches) with
# ThreadSanitizer into DIR, once: DIR/lib/libzmq.so.5. The TSan run of
# the suites loads it instead of the system's (LD_LIBRARY_PATH).
#
# Why: troupe hands every frame to ZeroMQ without a copy and ZeroMQ hands
# it to the receiving thread through its lock-free pipes. TSan sees only
# the code it instrumented, so with Debian's libzmq it sees no order
# between the sender's writes and the receiver's reads and reports each
# frame as a race in troupe's own envelope code. Those reports cannot be
# told from real races by any suppression (docs/reliability.md); built
# with TSan, libzmq's atomics order them and only real races are left.
#
# Needs apt-get, dpkg-source (dpkg-dev), cmake and g++. Fetches the
# source package with a private sources list, package lists and cache
# under DIR, as the calling user: the system's apt configuration and
# state are not touched. One to two minutes on 2 cores.
set -eu
dir=${1:?usage: tests/tsan-libzmq.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
lib=$dir/lib/libzmq.so.5
if [ -f "$lib" ] && nm -D "$lib" | grep -q __tsan_init; then
    exit 0
fi

ver=$(dpkg-query -W -f '${source:Version}' libzmq5)
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
work=$dir/src
rm -rf "$work"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" \
    "$work/apt/parts"
cat >"$work/apt/parts/zeromq-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
set -- -o Dir::Etc::SourceList=/dev/null \
    -o Dir::Etc::SourceParts="$work/apt/parts" \
    -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" \
    -o APT::Sandbox::User="$(id -un)"
apt-get "$@" -qq update
# dpkg-source may warn that it cannot check the .dsc's signature: apt has
# checked the files' hashes against the signed Sources index already.
(cd "$work" && apt-get "$@" -qq source --download-only "zeromq3=$ver" &&
    dpkg-source -x zeromq3_*.dsc zmq >/dev/null)

cmake -S "$work/zmq" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_INSTALL_PREFIX="$dir" -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_TESTS=OFF -DBUILD_STATIC=OFF -DWITH_PERF_TOOL=OFF \
    -DWITH_DOCS=OFF -DWITH_LIBSODIUM=OFF -DENABLE_DRAFTS=OFF >/dev/null
cmake --build "$work/build" -j "$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null
nm -D "$lib" | grep -q __tsan_init
echo "tsan-libzmq: $lib (zeromq3 $ver, ThreadSanitizer)"
