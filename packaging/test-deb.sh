#!/usr/bin/env bash
# Installs the Debian package into this machine (root, no other stathook installed), checks
# what it laid down, runs the packaged server as the stathook user with the packaged config
# and answers a webhook POST, verifies the systemd unit offline, then purges the package and
# checks that the machine is as it was. Used by CI after packaging/build-deb.sh. There is no
# systemd running here, so the unit is checked by `systemd-analyze`, never started.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB="$(ls target/debian/stathook_*.deb | head -1)"
[ "$(id -u)" = 0 ] || { echo "test-deb.sh must run as root"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok   $*"; }
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Before: nothing of stathook on the machine.
! dpkg -s stathook >/dev/null 2>&1 || fail "stathook is already installed"
! getent passwd stathook >/dev/null || fail "a stathook user already exists"
for p in /var/lib/stathook /etc/stathook /usr/bin/stathook; do
  [ ! -e "$p" ] || fail "$p already exists"
done

dpkg -i "$DEB" > "$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
ok "dpkg -i $DEB"

# The files, their owners and modes.
expect_stat() { # expect_stat PATH "MODE OWNER:GROUP"
  local got
  got="$(stat -c '%a %U:%G' "$1")" || fail "$1 missing"
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
  ok "$1 $got"
}
expect_stat /usr/bin/stathook "755 root:root"
expect_stat /etc/stathook/stathook.toml "644 root:root"
expect_stat /var/lib/stathook "750 stathook:stathook"
expect_stat /usr/lib/systemd/system/stathook.service "644 root:root"
expect_stat /usr/share/bash-completion/completions/stathook "644 root:root"
expect_stat /usr/share/zsh/vendor-completions/_stathook "644 root:root"
expect_stat /usr/share/fish/vendor_completions.d/stathook.fish "644 root:root"
expect_stat /usr/share/man/man1/stathook.1.gz "644 root:root"
expect_stat /usr/share/man/man1/stathook-serve.1.gz "644 root:root"
zcat /usr/share/man/man1/stathook-serve.1.gz | grep -q '^\.TH stathook-serve 1' || fail "man page"
dpkg-query -W -f='${Conffiles}\n' stathook | grep -q '/etc/stathook/stathook.toml' \
  || fail "the config is not a conffile"
ok "conffile /etc/stathook/stathook.toml"
shell="$(getent passwd stathook | cut -d: -f7)"
[ "$shell" = /usr/sbin/nologin ] || fail "stathook's shell is $shell"
ok "user stathook (system, nologin, home $(getent passwd stathook | cut -d: -f6))"
/usr/bin/stathook --version | grep -q "store format" || fail "--version"
bash -n /usr/share/bash-completion/completions/stathook || fail "bash completion"

# The unit, offline: systemd-analyze verify finds no error, and the exposure score.
systemd-analyze verify /usr/lib/systemd/system/stathook.service > "$WORK/verify" 2>&1 \
  || { cat "$WORK/verify"; fail "systemd-analyze verify"; }
[ ! -s "$WORK/verify" ] || { cat "$WORK/verify"; fail "systemd-analyze verify warned"; }
ok "systemd-analyze verify"
systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/stathook.service \
  > "$WORK/security" 2>&1 || true
score="$(grep -o 'Overall exposure level for stathook.service: [0-9.]* [A-Z]*' "$WORK/security" || true)"
[ -n "$score" ] || { cat "$WORK/security"; fail "no security score"; }
level="$(awk '{print $(NF-1)}' <<<"$score")"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { cat "$WORK/security"; fail "$score (want <= 2.0)"; }
ok "systemd-analyze security: $score"

# The packaged server, as the unit runs it (its user, its config), on a free loopback port.
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setpriv --reuid stathook --regid stathook --init-groups /usr/bin/stathook serve --config /etc/stathook/stathook.toml \
  --listen "127.0.0.1:$PORT" > "$WORK/stdout" 2> "$WORK/stderr" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/stdout" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$WORK/stdout" || { cat "$WORK/stderr"; fail "the server did not start"; }
URL="http://127.0.0.1:$PORT"
expect_stat /var/lib/stathook/admin-token "600 stathook:stathook"
/usr/bin/stathook project create --name "Package" --id pkg --server "$URL" \
  --data-dir /var/lib/stathook > /dev/null
/usr/bin/stathook webhook create --project pkg --name "Cron Job Metrics" --server "$URL" \
  --data-dir /var/lib/stathook > "$WORK/webhook" 2>/dev/null
KEY="$(sed -n 's/^API Key: //p' "$WORK/webhook")"
[ -n "$KEY" ] || fail "no webhook key"
now="$(date +%s)000"
answer="$(curl -sS -w ' %{http_code}' -X POST "$URL/api/webhooks/custom" \
  -H "Content-Type: application/json" -H "Authorization: Bearer $KEY" \
  -d "{\"projectId\":\"pkg\",\"metrics\":[{\"metricId\":\"backup_size\",\"metricName\":\"Backup size\",\"value\":12.5,\"unit\":\"GB\",\"timestamp\":$now}]}")"
[ "$answer" = '{"success":true,"metricsStored":1} 200' ] || fail "webhook POST: $answer"
ok "webhook POST to the packaged server: $answer"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "the server did not stop cleanly on SIGTERM"
SERVER_PID=""
grep -q "stopped cleanly" "$WORK/stderr" || { cat "$WORK/stderr"; fail "no clean stop in the log"; }
! grep -qF "$KEY" "$WORK/stdout" "$WORK/stderr" || fail "the webhook key is in the log"
ok "SIGTERM: clean stop"
# The data stayed where the config put it, owned by the server's user.
[ -n "$(find /var/lib/stathook -user stathook -name '*.redb')" ] || { ls -la /var/lib/stathook; fail "no store in /var/lib/stathook"; }
[ -z "$(find /var/lib/stathook ! -user stathook)" ] || fail "files not owned by stathook"
ok "store in /var/lib/stathook"

# An upgrade (the same package again) keeps the data and an edited config.
echo 'cache-mb = 64' >> /etc/stathook/stathook.toml
dpkg -i "$DEB" > "$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i over itself"; }
grep -q '^cache-mb = 64$' /etc/stathook/stathook.toml || fail "the upgrade replaced the edited config"
[ -n "$(find /var/lib/stathook -name '*.redb')" ] || fail "the upgrade lost the store"
ok "reinstall: data and the edited config kept"

dpkg --purge stathook > "$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg --purge"; }
! dpkg -s stathook >/dev/null 2>&1 || fail "still installed"
! getent passwd stathook >/dev/null || fail "the stathook user is left"
! getent group stathook >/dev/null || fail "the stathook group is left"
for p in /var/lib/stathook /etc/stathook /usr/bin/stathook /usr/lib/systemd/system/stathook.service \
    /usr/share/man/man1/stathook.1.gz; do
  [ ! -e "$p" ] || fail "$p is left after purge"
done
ok "dpkg --purge: nothing left"
echo "debian package: all checks passed"
