#!/bin/bash
# A static HTTP responder (TEST DOUBLE of pkg.jenkins.io) for the repository
# made by build-repo.sh: GET/HEAD of files under REPO, 404 otherwise.
#
#   serve-repo.sh start REPO [PORT] [ADDR]   # daemon; pid in REPO/.serve.pid
#   serve-repo.sh stop REPO
#   serve-repo.sh handle                     # one request (socat EXEC), REPO from $SERVE_ROOT
#
# Defaults: 127.0.0.1:8089. Needs bash, socat, coreutils.
set -u
SELF=$(readlink -f "$0")

handle() {
    local line target path h len=0 method file type
    IFS= read -r line || exit 0
    line=${line%$'\r'}
    method=${line%% *}
    target=${line#* }
    target=${target%% *}
    path=${target%%\?*}
    while IFS= read -r h; do
        h=${h%$'\r'}
        [ -z "$h" ] && break
    done
    path=$(printf '%b' "${path//%/\\x}")
    file="$SERVE_ROOT$path"
    case $path in
        *..* | "") file="" ;;
    esac
    if [ -z "$file" ] || [ ! -f "$file" ]; then
        printf 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n'
        echo "$(date +%FT%T) $method $path 404" >> "$SERVE_ROOT/.serve.log"
        exit 0
    fi
    case $file in
        *.deb) type=application/vnd.debian.binary-package ;;
        *.gz) type=application/gzip ;;
        *) type=text/plain ;;
    esac
    printf 'HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %s\r\nLast-Modified: %s\r\nConnection: close\r\n\r\n' \
        "$type" "$(stat -c %s "$file")" "$(LC_ALL=C date -u -r "$file" '+%a, %d %b %Y %H:%M:%S GMT')"
    [ "$method" = HEAD ] || cat -- "$file"
    echo "$(date +%FT%T) $method $path 200" >> "$SERVE_ROOT/.serve.log"
}

case ${1:-} in
    start)
        root=$(cd "${2:?REPO}" && pwd)
        port=${3:-8089}
        addr=${4:-127.0.0.1}
        if [ -f "$root/.serve.pid" ] && kill -0 "$(cat "$root/.serve.pid")" 2>/dev/null; then
            exit 0
        fi
        SERVE_ROOT=$root setsid socat "TCP-LISTEN:$port,bind=$addr,fork,reuseaddr" "EXEC:$SELF handle" \
            < /dev/null >> "$root/.serve.log" 2>&1 &
        echo $! > "$root/.serve.pid"
        # Wait until it listens.
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null && exit 0
            sleep 0.1
        done
        echo "serve-repo: nothing listens on $addr:$port" >&2
        exit 1
        ;;
    stop)
        root=$(cd "${2:?REPO}" && pwd)
        [ -f "$root/.serve.pid" ] && kill "$(cat "$root/.serve.pid")" 2>/dev/null
        rm -f "$root/.serve.pid"
        ;;
    handle) handle ;;
    *) echo "usage: $0 start REPO [PORT] [ADDR] | stop REPO | handle" >&2; exit 2 ;;
esac
