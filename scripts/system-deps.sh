#!/bin/sh
# Debian packages the tests need and pip cannot give: Redis (Argilla's job queue), Chromium (the browser
# test), MariaDB (the DBBench engine prefkit starts itself) and bubblewrap (the code sandbox). Installs only
# what is missing; as root, or through passwordless sudo.
set -e
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v mariadbd >/dev/null 2>&1 || missing="$missing mariadb-server"
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: install$missing with your package manager" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
echo "system-deps: apt-get install$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q$missing >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q$missing >/dev/null; }
