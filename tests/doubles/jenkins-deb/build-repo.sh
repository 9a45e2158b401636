#!/bin/bash
# Builds a local, signed APT repository laid out like pkg.jenkins.io's flat
# "debian-stable" repository, holding the stand-in jenkins .deb (TEST DOUBLE):
#
#   REPO/debian-stable/jenkins.io-2023.key        throwaway public key (armored)
#   REPO/debian-stable/binary/jenkins_*_all.deb
#   REPO/debian-stable/binary/{Packages,Packages.gz,Release,Release.gpg,InRelease}
#
#   build-repo.sh REPO [DEB...]     (no DEB: builds one with build-deb.sh)
#
# so that `deb [signed-by=KEY] http://127.0.0.1:8089/debian-stable binary/`
# works like the real one. The signing key is made fresh in a temporary
# GNUPGHOME and thrown away; only its public half is kept. Needs bash, gpg,
# gzip, coreutils, dpkg-deb.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${1:?usage: build-repo.sh REPO [DEB...]}
shift
mkdir -p "$repo/debian-stable/binary"
repo=$(cd "$repo" && pwd)
top="$repo/debian-stable"
bin="$top/binary"
if [ $# -eq 0 ]; then
    set -- "$("$here/build-deb.sh" "$bin")"
else
    for d in "$@"; do cp -f -- "$d" "$bin/"; done
fi

: > "$bin/Packages"
for deb in "$bin"/*.deb; do
    name=$(basename "$deb")
    dpkg-deb -f "$deb" >> "$bin/Packages"
    {
        echo "Filename: binary/$name"
        echo "Size: $(stat -c %s "$deb")"
        echo "MD5sum: $(md5sum < "$deb" | cut -d' ' -f1)"
        echo "SHA1: $(sha1sum < "$deb" | cut -d' ' -f1)"
        echo "SHA256: $(sha256sum < "$deb" | cut -d' ' -f1)"
        echo
    } >> "$bin/Packages"
done
gzip -9nc "$bin/Packages" > "$bin/Packages.gz"

{
    echo "Origin: ferry-test-double"
    echo "Label: jenkins stand-in (TEST DOUBLE)"
    echo "Suite: binary"
    echo "Codename: binary"
    echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
    echo "Architectures: all"
    for algo in MD5Sum:md5sum SHA1:sha1sum SHA256:sha256sum; do
        echo "${algo%%:*}:"
        for f in Packages Packages.gz; do
            printf ' %s %s %s\n' "$(${algo#*:} < "$bin/$f" | cut -d' ' -f1)" "$(stat -c %s "$bin/$f")" "$f"
        done
    done
} > "$bin/Release"

gnupg=$(mktemp -d)
trap 'gpgconf --homedir "$gnupg" --kill all >/dev/null 2>&1 || true; rm -rf "$gnupg"' EXIT
export GNUPGHOME="$gnupg"
gpg --batch --quiet --passphrase '' --quick-gen-key 'ferry test repository (throwaway) <ferry-tests@localhost>' ed25519 sign never 2>/dev/null
gpg --batch --quiet --armor --export > "$top/jenkins.io-2023.key"
rm -f "$bin/Release.gpg" "$bin/InRelease"
gpg --batch --quiet --armor --detach-sign -o "$bin/Release.gpg" "$bin/Release"
gpg --batch --quiet --clearsign -o "$bin/InRelease" "$bin/Release"
echo "$top"
