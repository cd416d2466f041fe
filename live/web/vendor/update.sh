#!/bin/sh
# Copies the web app's client libraries (pinned in package.json, exact versions and hashes in package-lock.json)
# from npm into live/web/static/vendor/, with their licenses. Run it after changing a version, then commit the
# result; `make run` and the tests use the committed copies and need no node.
#   sh live/web/vendor/update.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../static/vendor"
cd "$here"
if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
mkdir -p "$out"
sio=node_modules/socket.io-client
cp "$sio/dist/socket.io.esm.min.js" "$out/socket.io.esm.min.js"
cp "$sio/LICENSE" "$out/socket.io-client.LICENSE"
version=$(node -p "require('./$sio/package.json').version")
printf 'socket.io-client %s (npm): socket.io.esm.min.js, license socket.io-client.LICENSE\n' "$version" > "$out/VERSIONS"
rm -rf node_modules
echo "vendored into $out:"; cat "$out/VERSIONS"
