#!/usr/bin/env bash
# Runs docker/Dockerfile's steps outside Docker (the development machines have no Docker engine), with the node in
# PATH: the build stage's RUN lines in a copy of the build context, then the image's CMD with its ENV, until the
# image's HEALTHCHECK command passes, then a SIGTERM that must stop it with exit 0. Not run here: the FROM images,
# the runtime stage's RUN (apt-get of openssl and redis-server, the /data volume's owner), USER and the volume itself.
#   docker/check-outside.sh            (CI: .ci/run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dockerfile="$root/docker/Dockerfile"
work=$(mktemp -d "${TMPDIR:-/tmp}/posta-image-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '[check-outside] %s\n' "$*"; }

# The Dockerfile's instructions, continuation lines joined: "<stage> <INSTRUCTION> <rest>" per line.
instructions=$(awk '
  /^[[:space:]]*#/ { next }
  { line = line $0 }
  /\\$/ { sub(/\\$/, "", line); next }
  line ~ /^[[:space:]]*$/ { line = ""; next }
  { split(line, w, " "); if (toupper(w[1]) == "FROM") stage++; print stage " " line; line = "" }
' "$dockerfile")
stages=$(printf '%s\n' "$instructions" | awk '{print $1}' | sort -u | wc -l)
[ "$stages" -ge 2 ] || { echo "check-outside: $dockerfile is not multi-stage" >&2; exit 1; }

say "node $(node --version), npm $(npm --version); context copied to $work/app"
mkdir -p "$work/app"
# the build context: files git knows (tracked or new, not ignored), minus docker/Dockerfile.dockerignore's entries
(cd "$root" && git ls-files -co --exclude-standard) | while IFS= read -r f; do [ -e "$root/$f" ] && printf '%s\n' "$f"; done \
  | grep -v -E '^(\.git|\.cache|node_modules|dist|var|test/artifacts)(/|$)' \
  | (cd "$root" && tar -cf - -T -) | tar -xf - -C "$work/app"

# build stage: every RUN, in order
while IFS= read -r cmd; do
  say "RUN $cmd"
  (cd "$work/app" && bash -euo pipefail -c "$cmd")
done < <(printf '%s\n' "$instructions" | awk '$1 == 1 && toupper($2) == "RUN" { $1 = ""; $2 = ""; sub(/^  /, ""); print }')
printf '%s\n' "$instructions" | awk '$1 > 1 && toupper($2) == "RUN" { $1 = ""; $2 = ""; sub(/^  /, ""); print "[check-outside] not run (needs root and the image): RUN " $0 }'
[ ! -d "$work/app/node_modules/typescript" ] || { echo "check-outside: dev dependencies left after the build stage" >&2; exit 1; }

# the image's CMD with its ENV (ports moved to free ones, the data dir to a temp dir)
cmd_json=$(printf '%s\n' "$instructions" | awk 'toupper($2) == "CMD" { $1 = ""; $2 = ""; sub(/^  /, ""); c = $0 } END { print c }')
health=$(printf '%s\n' "$instructions" | awk 'toupper($2) == "HEALTHCHECK" { sub(/.* CMD /, ""); print }')
[ -n "$health" ] || { echo "check-outside: no HEALTHCHECK in $dockerfile" >&2; exit 1; }
read -r smtp submission smtps panel < <(node -e '
  const net = require("net"); const got = new Set()
  const one = () => new Promise((res) => { const p = 20000 + Math.floor(Math.random() * 12000); const s = net.createServer()
    s.once("error", () => res(one())); s.listen(p, "127.0.0.1", () => s.close(() => res(got.has(p) ? one() : (got.add(p), p)))) })
  ;(async () => { const ps = []; for (let i = 0; i < 4; i++) ps.push(await one()); console.log(ps.join(" ")) })()')
export NODE_ENV=production POSTA_DATA_DIR="$work/data" POSTA_LISTEN=127.0.0.1 POSTA_RESOLVERS=127.0.0.1:9 \
  POSTA_SMTP_PORT=$smtp POSTA_SUBMISSION_PORT=$submission POSTA_SMTPS_PORT=$smtps POSTA_PANEL_PORT=$panel
unset REDIS_URL NODE_OPTIONS
mapfile -t argv < <(node -e 'for (const a of JSON.parse(process.argv[1])) console.log(a)' "$cmd_json")
say "CMD ${argv[*]} (SMTP $smtp, submission $submission, SMTPS $smtps, panel $panel)"
(cd "$work/app" && exec "${argv[@]}") > "$work/service.log" 2>&1 &
pid=$!
healthy=""
for _ in $(seq 1 120); do
  kill -0 "$pid" 2>/dev/null || break
  if (cd "$work/app" && bash -c "$health") >/dev/null 2>&1; then healthy=1; break; fi
  sleep 1
done
if [ -z "$healthy" ]; then
  tail -40 "$work/service.log" >&2
  echo "check-outside: the HEALTHCHECK never passed" >&2
  exit 1
fi
say "HEALTHCHECK passed: $health"
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
grep -E '^\[posta\] (stopped|stopping)' "$work/service.log" | sed 's/^/[check-outside] service: /'
[ "$code" -eq 0 ] || { tail -40 "$work/service.log" >&2; echo "check-outside: the service exited $code on SIGTERM" >&2; exit 1; }
say "ok: built, started, healthy and stopped on SIGTERM outside Docker"
