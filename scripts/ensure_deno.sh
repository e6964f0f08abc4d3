# Sourced by .ci/run: puts the pinned Deno on PATH, installing it from the npm registry into
# .tools/deno (kept between runs) when it is not there yet. Deno itself is not preinstalled.
DENO_VERSION=2.9.6
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_tools="$_here/.tools/deno-$DENO_VERSION"
if ! "$_tools/node_modules/.bin/deno" --version 2>/dev/null | grep -q "deno $DENO_VERSION"; then
  mkdir -p "$_tools"
  (cd "$_tools" && npm install --no-audit --no-fund --silent "deno@$DENO_VERSION" >/dev/null) || {
    echo "could not install deno@$DENO_VERSION from the npm registry" >&2
    return 1 2>/dev/null || exit 1
  }
fi
export PATH="$_tools/node_modules/.bin:$PATH"
deno --version | head -1
