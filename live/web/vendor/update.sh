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
# livekit-client: its ES module build bundles its dependencies but is not minified (1.4 MB); esbuild (a build
# tool only, pinned here too) minifies it to ~590 KB (~155 KB gzipped), keeping the bundled code's license
# comments at the end. The watch and studio pages import it only when the join ack names LiveKit (js/livekit.js).
lk=node_modules/livekit-client
node_modules/.bin/esbuild "$lk/dist/livekit-client.esm.mjs" --minify --format=esm --target=es2020 \
  --legal-comments=eof --log-level=warning --outfile="$out/livekit-client.esm.min.js"
# its license, then those of the packages its build bundles (its dependencies, as npm installed them)
DEPS='
const path = require("path"), fs = require("fs"), seen = new Set();
(function walk(dir) {
  const pkg = require(path.resolve(dir, "package.json"));
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) {
    let d = path.resolve(dir);
    while (!fs.existsSync(path.join(d, "node_modules", name)) && d !== path.dirname(d)) d = path.dirname(d);
    const found = path.join(d, "node_modules", name);
    if (fs.existsSync(found) && !seen.has(found)) { seen.add(found); walk(found); }
  }
})(process.argv[1]);
console.log([...seen].map((p) => path.relative(process.cwd(), p)).sort().join("\n"));'
{
  cat "$lk/LICENSE"
  for dep in $(node -e "$DEPS" "$lk"); do
    printf '\n\n---- %s (%s) ----\n' "${dep#"$here/"}" "$(node -p "require('./$dep/package.json').license")"
    for f in "$dep"/LICENSE* "$dep"/LICENCE* "$dep"/license*; do
      if [ -f "$f" ]; then cat "$f"; break; fi
    done
  done
} > "$out/livekit-client.LICENSE"
version=$(node -p "require('./$lk/package.json').version")
printf 'livekit-client %s (npm): livekit-client.esm.min.js (minified by esbuild), license livekit-client.LICENSE (with its bundled dependencies)\n' "$version" >> "$out/VERSIONS"
rm -rf node_modules
echo "vendored into $out:"; cat "$out/VERSIONS"
