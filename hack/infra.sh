#!/usr/bin/env bash
# One entry point for the real components the tests and developers use.
#
#   hack/infra.sh up     [component...]   install (first time) and start; idempotent
#   hack/infra.sh status [component...]
#   hack/infra.sh down   [component...]
#   hack/infra.sh env                     print the merged env.json
#   hack/infra.sh reset                   down everything and delete all state (keeps the cache)
#
# Components: podnet redis smtp kafka kube docker chromium node (default: all, in that
# order; down goes the other way). Each lives in hack/<component>.sh with the
# same verbs. Every server listens on 127.0.0.1; podnet is the bridge through
# which the pods of the real node (node) reach them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(podnet redis smtp kafka kube docker chromium node)

merge_env() {
  node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1], out = {};
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json") && f !== "env.json").sort())
      Object.assign(out, JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
    fs.writeFileSync(path.join(dir, "env.json"), JSON.stringify(out, null, 2) + "\n");
  ' "$INFRA_DIR"
}

verb=${1:-status}; shift || true
components=("$@"); (( ${#components[@]} )) || components=("${ALL[@]}")

# Components go up in the order of ALL, and down the other way round (the node's
# pods are deleted through the API server; the pod network goes last), whatever
# order they were named in.
ordered=()
for c in "${ALL[@]}"; do [[ " ${components[*]} " == *" $c "* ]] && ordered+=("$c"); done
for c in "${components[@]}"; do [[ " ${ALL[*]} " == *" $c "* ]] || ordered+=("$c"); done   # unknown: refused below
components=("${ordered[@]}")
if [[ $verb == down ]]; then
  reversed=(); for ((i = ${#components[@]} - 1; i >= 0; i--)); do reversed+=("${components[i]}"); done
  components=("${reversed[@]}")
fi

case $verb in
  up|status|down)
    failed=()
    for c in "${components[@]}"; do
      [[ -f $REPO_ROOT/hack/$c.sh ]] || die "unknown component '$c' (known: ${ALL[*]})"
      start=$SECONDS
      if bash "$REPO_ROOT/hack/$c.sh" "$verb"; then
        [[ $verb == up ]] && log "$c up in $((SECONDS - start))s"
      else
        failed+=("$c")
        log "$c: $verb failed (log: $LOG_DIR/$c.log)"
      fi
    done
    merge_env
    (( ${#failed[@]} == 0 )) || die "not $verb: ${failed[*]}"
    ;;
  env) merge_env; cat "$INFRA_DIR/env.json" ;;
  reset)
    for ((i = ${#ALL[@]} - 1; i >= 0; i--)); do bash "$REPO_ROOT/hack/${ALL[i]}.sh" down || true; done
    rm -rf "$INFRA_DIR"
    log "state removed; cache kept at $SLUICE_CACHE"
    ;;
  *) die "usage: hack/infra.sh up|status|down|env|reset [component...]" ;;
esac
