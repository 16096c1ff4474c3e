#!/usr/bin/env bash
# make test: formatting, vet, and every test (unit, plugin subprocess,
# end-to-end through graphsim and a real JetStream server).
set -euo pipefail
cd "$(dirname "$0")/.."

bad=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

# The LDAP connector's tests start a real slapd and a Samba AD DC
# (internal/testenv); they skip where those are missing. Install them
# where apt works; a machine with systemd must not keep them running as
# services (Samba's tests need port 389 on their own loopback addresses).
ldap_pkgs=()
{ command -v slapd || [ -x /usr/sbin/slapd ]; } >/dev/null 2>&1 || ldap_pkgs+=(slapd)
{ { command -v samba || [ -x /usr/sbin/samba ]; } && command -v samba-tool; } >/dev/null 2>&1 ||
  ldap_pkgs+=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision)
if [ ${#ldap_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo ">> installing ${ldap_pkgs[*]} for the slapd and Samba tests"
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ldap_pkgs[@]}" >/dev/null); then
      systemctl disable --now slapd smbd nmbd samba-ad-dc >/dev/null 2>&1 || true
    else
      echo "could not install ${ldap_pkgs[*]} with apt-get: the slapd and Samba tests will skip"
    fi
  else
    echo "cannot install ${ldap_pkgs[*]} here (needs root and apt-get): the slapd and Samba tests will skip"
  fi
fi

# The console's browser tests drive Debian's Chromium headless
# (internal/headless); they skip where it is missing. Install it where
# apt works.
if ! { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || [ -n "${DIRSYNC_CHROMIUM:-}" ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo ">> installing chromium for the console's browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) ||
      echo "could not install chromium with apt-get: the browser tests will skip"
  else
    echo "cannot install chromium here (needs root and apt-get): the browser tests will skip; set DIRSYNC_CHROMIUM to a Chromium binary to run them"
  fi
fi

echo ">> go vet"
go vet ./...
echo ">> go test (the first run compiles msgraph-sdk-go for the Azure AD connector: minutes)"
go test -count=1 -timeout 15m ./...
echo ">> fuzzing, 5 s per target (make fuzz FUZZTIME=10m for longer)"
FUZZTIME=5s ./scripts/fuzz.sh
