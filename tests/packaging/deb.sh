#!/bin/bash
# Builds the Debian package from a copy of the tree, unpacks it into a
# throwaway root and checks what an admin gets: binary, conffile, systemd
# unit, man pages, and an installed binary that checks the installed config.
# Prints one PASS or FAIL line per check. Needs debhelper, dpkg-dev, lintian
# (scripts/deps package). Usage: tests/packaging/deb.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
tmp=$(mktemp -d /tmp/ftp-alg-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# The copy is a git repository of its own, so that what the build leaves
# behind can be seen the way git in the real tree would see it.
mkdir "$tmp/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z -co --exclude-standard | (cd "$src" && xargs -0 cp --parents -t "$tmp/src")
else
  tar -C "$src" --exclude='./build*' --exclude=./.deps --exclude=./.git -cf - . | tar -C "$tmp/src" -xf -
fi
git -C "$tmp/src" init -q
git -C "$tmp/src" add -A
git -C "$tmp/src" -c user.name=test -c user.email=test@example.org commit -qm copy

if (cd "$tmp/src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b builds the package"
else
  tail -30 "$tmp/build.log"; fail "dpkg-buildpackage -us -uc -b"; exit 1
fi
deb=$(ls "$tmp"/ftp-alg_*_*.deb | grep -v dbgsym | head -1)
check "the build leaves nothing in the tree that git sees" \
  test -z "$(git -C "$tmp/src" status --porcelain | tee /dev/stderr)"

lintian --pedantic -I "$tmp"/ftp-alg_*.changes >"$tmp/lintian.log" 2>&1
grep -E '^[EW]: ' "$tmp/lintian.log"
check "lintian reports no errors" bash -c "! grep -q '^E: ' '$tmp/lintian.log'"

root=$tmp/root
dpkg -x "$deb" "$root" && dpkg-deb -e "$deb" "$tmp/DEBIAN"
missing=
for f in usr/sbin/ftp-alg etc/ftp-alg/ftp-alg.conf lib/systemd/system/ftp-alg.service \
         usr/share/man/man8/ftp-alg.8.gz usr/share/man/man5/ftp-alg.conf.5.gz usr/share/doc/ftp-alg/copyright; do
  [ -e "$root/$f" ] || missing="$missing $f"
done
check "the package holds binary, config, unit, both man pages and copyright${missing:+ (missing:$missing)}" \
  test -z "$missing"
check "the package holds no OpenWrt init script" test ! -e "$root/etc/init.d/ftp-alg"
check "DEBIAN/conffiles lists /etc/ftp-alg/ftp-alg.conf" grep -qx /etc/ftp-alg/ftp-alg.conf "$tmp/DEBIAN/conffiles"
check "postinst enables ftp-alg.service (dh_installsystemd found the unit)" \
  grep -q "deb-systemd-helper enable 'ftp-alg.service'" "$tmp/DEBIAN/postinst"
check "postinst creates the system group ftp-alg before the unit starts" \
  bash -c "grep -q 'addgroup --system --quiet ftp-alg' '$tmp/DEBIAN/postinst' &&
           [ \$(grep -n addgroup '$tmp/DEBIAN/postinst' | head -1 | cut -d: -f1) -lt \$(grep -n deb-systemd-helper '$tmp/DEBIAN/postinst' | head -1 | cut -d: -f1) ]"
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends names the shared libraries ($depends)" \
  bash -c "for l in libmnl0 libnftnl11 libnetfilter-queue1 libnetfilter-conntrack3 libcap-ng0 libseccomp2; do
             grep -q \"\$l \" <<<'$depends' || exit 1; done"
unit=$root/lib/systemd/system/ftp-alg.service
check "the unit starts /usr/sbin/ftp-alg with /etc/ftp-alg/ftp-alg.conf and reloads through ftp-alg reload" \
  bash -c "grep -qx 'ExecStart=/usr/sbin/ftp-alg --config /etc/ftp-alg/ftp-alg.conf' '$unit' &&
           grep -qx 'ExecReload=/usr/sbin/ftp-alg reload' '$unit'"
if command -v systemd-analyze >/dev/null; then
  # verify wants the executables where the unit names them: point it into the root.
  mkdir "$tmp/unit"
  sed "s#/usr/sbin/ftp-alg#$root/usr/sbin/ftp-alg#g; s#/etc/ftp-alg/#$root/etc/ftp-alg/#g" "$unit" \
    >"$tmp/unit/ftp-alg.service"
  out=$(systemd-analyze verify --man=no "$tmp/unit/ftp-alg.service" 2>&1)
  [ -z "$out" ] || echo "$out"
  check "systemd-analyze verify finds nothing wrong with the installed unit" test -z "$out"
fi

out=$("$root/usr/sbin/ftp-alg" --check-config "$root/etc/ftp-alg/ftp-alg.conf" 2>&1)
check "the installed binary accepts the installed config ($out)" test "$out" = "$root/etc/ftp-alg/ftp-alg.conf: OK"
cp "$root/etc/ftp-alg/ftp-alg.conf" "$tmp/bad.conf"
echo "PassivePorts = 60999-60000" >>"$tmp/bad.conf"
"$root/usr/sbin/ftp-alg" --check-config "$tmp/bad.conf" >/dev/null 2>&1
check "the installed binary refuses a bad config with exit 2" test $? -eq 2

[ "$fails" -eq 0 ]
