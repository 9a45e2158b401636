#!/bin/bash
# Builds a STAND-IN `jenkins` .deb (TEST DOUBLE, not Jenkins) for ferry's tests:
# it installs tests/doubles/jenkins-api/jenkins-api-double as the "server",
# with the files a Jenkins package has (init script, /etc/default/jenkins,
# systemd unit, jenkins user, JENKINS_HOME, initialAdminPassword).
#
#   build-deb.sh OUTDIR [VERSION]      -> OUTDIR/jenkins_VERSION_all.deb
#
# Needs bash, dpkg-deb and coreutils (present on Debian and on the test hosts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
api="$here/../jenkins-api"
out=${1:?usage: build-deb.sh OUTDIR [VERSION]}
version=${2:-2.440.3+ferry.double1}
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -d "$root/DEBIAN" "$root/usr/share/jenkins" "$root/etc/init.d" "$root/etc/default" \
    "$root/lib/systemd/system" "$root/usr/share/doc/jenkins"
install -m 0755 "$api/jenkins-api-double" "$root/usr/share/jenkins/jenkins-api-double"
install -m 0644 "$api/update-center.txt" "$root/usr/share/jenkins/update-center.txt"
install -m 0644 "$api/README.md" "$root/usr/share/doc/jenkins/README.jenkins-api-double.md"

cat > "$root/etc/default/jenkins" <<'EOF'
# defaults for the jenkins stand-in (TEST DOUBLE of the Jenkins package)
NAME=jenkins
# Options a real Jenkins passes to java; the double records them in
# $JENKINS_HOME/ferry-double/runtime.env.
JAVA_ARGS="-Djava.awt.headless=true"
JENKINS_USER=$NAME
JENKINS_GROUP=$NAME
JENKINS_HOME=/var/lib/$NAME
JENKINS_LOG=/var/log/$NAME/$NAME.log
# port for HTTP connector (default 8080; disable with -1)
HTTP_PORT=8080
JENKINS_ARGS="--webroot=/var/cache/$NAME/war --httpPort=$HTTP_PORT"
EOF

cat > "$root/etc/init.d/jenkins" <<'EOF'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          jenkins
# Required-Start:    $remote_fs $syslog $network
# Required-Stop:     $remote_fs $syslog $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Jenkins stand-in (TEST DOUBLE: jenkins-api-double)
### END INIT INFO
# Reads /etc/default/jenkins like the old Jenkins init script: HTTP_PORT
# (or JENKINS_PORT), JENKINS_HOME, JAVA_ARGS, JENKINS_ARGS, JENKINS_USER.
NAME=jenkins
DAEMON=/usr/share/jenkins/jenkins-api-double
JENKINS_USER=jenkins
JENKINS_GROUP=jenkins
JENKINS_HOME=/var/lib/jenkins
HTTP_PORT=8080
JENKINS_LOG=/var/log/jenkins/jenkins.log
[ -r /etc/default/$NAME ] && . /etc/default/$NAME
PORT=${JENKINS_PORT:-$HTTP_PORT}
PIDFILE=/var/run/$NAME/$NAME.pid

running() {
    start-stop-daemon --status --pidfile "$PIDFILE" >/dev/null 2>&1
}

do_start() {
    if running; then
        echo "$NAME is already running"
        return 0
    fi
    mkdir -p "$(dirname "$PIDFILE")" "$(dirname "$JENKINS_LOG")" "$JENKINS_HOME"
    chown "$JENKINS_USER:$JENKINS_GROUP" "$(dirname "$PIDFILE")" "$(dirname "$JENKINS_LOG")" "$JENKINS_HOME"
    echo "Starting $NAME (jenkins-api-double) on port $PORT"
    JENKINS_HOME=$JENKINS_HOME JAVA_ARGS=$JAVA_ARGS JENKINS_ARGS=$JENKINS_ARGS HOME=$JENKINS_HOME \
    start-stop-daemon --start --background --make-pidfile --pidfile "$PIDFILE" \
        --chuid "$JENKINS_USER:$JENKINS_GROUP" --chdir "$JENKINS_HOME" --output "$JENKINS_LOG" \
        --exec "$DAEMON" -- serve --port "$PORT" --home "$JENKINS_HOME"
}

do_stop() {
    if ! running; then
        echo "$NAME is not running"
        rm -f "$PIDFILE"
        return 0
    fi
    echo "Stopping $NAME"
    start-stop-daemon --stop --pidfile "$PIDFILE" --retry TERM/10/KILL/5 >/dev/null
    rm -f "$PIDFILE"
}

case "$1" in
    start) do_start ;;
    stop) do_stop ;;
    restart | force-reload) do_stop; do_start ;;
    status)
        if running; then
            echo "$NAME is running"
            exit 0
        fi
        echo "$NAME is not running"
        exit 3
        ;;
    *) echo "Usage: /etc/init.d/$NAME {start|stop|status|restart|force-reload}" >&2; exit 3 ;;
esac
EOF
chmod 0755 "$root/etc/init.d/jenkins"

cat > "$root/lib/systemd/system/jenkins.service" <<'EOF'
# jenkins stand-in (TEST DOUBLE: jenkins-api-double). Like the real unit,
# settings come from Environment= lines; override them in a drop-in
# (/etc/systemd/system/jenkins.service.d/override.conf).
[Unit]
Description=Jenkins stand-in (jenkins-api-double, a test double)
After=network.target

[Service]
Type=simple
User=jenkins
Group=jenkins
Environment="JENKINS_HOME=/var/lib/jenkins"
WorkingDirectory=/var/lib/jenkins
Environment="JENKINS_PORT=8080"
Environment="JAVA_OPTS=-Djava.awt.headless=true"
ExecStart=/usr/share/jenkins/jenkins-api-double serve
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF

cat > "$root/DEBIAN/conffiles" <<'EOF'
/etc/default/jenkins
/etc/init.d/jenkins
EOF

cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
case "$1" in
    configure)
        if ! getent group jenkins >/dev/null; then
            groupadd --system jenkins
        fi
        if ! getent passwd jenkins >/dev/null; then
            useradd --system --gid jenkins --home-dir /var/lib/jenkins --no-create-home \
                --shell /bin/bash --comment "Jenkins (stand-in)" jenkins
        fi
        mkdir -p /var/lib/jenkins/secrets /var/log/jenkins /var/cache/jenkins
        if [ ! -s /var/lib/jenkins/secrets/initialAdminPassword ]; then
            head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /var/lib/jenkins/secrets/initialAdminPassword
            echo >> /var/lib/jenkins/secrets/initialAdminPassword
        fi
        chown -R jenkins:jenkins /var/lib/jenkins /var/log/jenkins /var/cache/jenkins
        chmod 0700 /var/lib/jenkins/secrets
        chmod 0640 /var/lib/jenkins/secrets/initialAdminPassword
        # Like the real package, the service is enabled and started on install.
        if [ -x /etc/init.d/jenkins ]; then
            update-rc.d jenkins defaults >/dev/null
            if [ -d /run/systemd/system ]; then
                systemctl daemon-reload >/dev/null 2>&1 || true
                deb-systemd-invoke start jenkins.service >/dev/null || true
            else
                invoke-rc.d jenkins start || true
            fi
        fi
        ;;
esac
exit 0
EOF

cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -x /etc/init.d/jenkins ]; then
    invoke-rc.d jenkins stop || true
fi
exit 0
EOF

cat > "$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    update-rc.d jenkins remove >/dev/null || true
    rm -rf /var/log/jenkins /var/cache/jenkins /var/run/jenkins
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: jenkins
Version: $version
Architecture: all
Maintainer: ferry test doubles <ferry-tests@localhost>
Installed-Size: $size
Depends: bash, socat, coreutils, sed, grep, util-linux, passwd, init-system-helpers
Section: devel
Priority: optional
Homepage: https://www.jenkins.io/
Description: TEST DOUBLE standing in for Jenkins (not Jenkins)
 A stand-in for the Jenkins package, built by ferry's tests where the real
 package cannot be downloaded. Its "server" is jenkins-api-double, a bash
 responder for the parts of Jenkins' HTTP API that ferry's modules use.
 It runs no builds and no Groovy.
EOF

deb="$out/jenkins_${version}_all.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
