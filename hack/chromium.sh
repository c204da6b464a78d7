#!/usr/bin/env bash
# Debian's chromium, for the browser test of `sluice dashboard` (driven headless
# by playwright-core with executablePath /usr/bin/chromium; playwright's own
# browser download cannot work offline). Nothing runs: `up` installs it once.
#
#   hack/chromium.sh up|status|down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=chromium
BIN=/usr/bin/chromium

fragment() {
  write_fragment "$NAME" "{\"chromium\":{\"executablePath\":\"$BIN\"}}"
}

status() {
  if [[ -x $BIN ]]; then
    echo "chromium: installed $BIN ($("$BIN" --version 2>/dev/null | head -n 1))"
  else
    echo "chromium: not installed"
    return 1
  fi
}

up() {
  take_lock "$NAME" 600
  apt_install chromium fonts-liberation
  [[ -x $BIN ]] || die "apt-get install chromium did not provide $BIN"
  fragment
  status
}

down() {
  # Nothing runs; the package stays installed (like the other components' binaries in the cache).
  drop_fragment "$NAME"
  echo "chromium: down (still installed)"
}

case ${1:-} in
  up) up ;;
  status) status ;;
  down) down ;;
  *) die "usage: hack/chromium.sh up|status|down" ;;
esac
