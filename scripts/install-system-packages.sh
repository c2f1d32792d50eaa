#!/usr/bin/env bash
# The system packages `make test` needs: a PostgreSQL server, Chromium, Dovecot, Redis, the DejaVu fonts the receipt PDF
# uses (and venv support for Python).
# Does nothing when they are all present; installs the missing ones with apt as root; otherwise names them.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null || missing+=(dovecot-imapd dovecot-lmtpd)
[ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null || missing+=(redis-server)
[ -d .venv ] || "${PY:-python3}" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "The tests need these system packages: ${missing[*]}" >&2
    echo "Install them, e.g.: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
