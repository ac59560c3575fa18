#!/bin/bash
# Checks the OpenWrt package without an OpenWrt tree: the feed Makefile runs
# against stub includes (its variables, Build/Prepare and Package/install
# into a throwaway root, from a meson build with its MESON_ARGS), and the
# init script's UCI translation, with a stand-in of /lib/functions.sh, gives
# config files that build/ftp-alg accepts. Prints one PASS or FAIL line per
# check. Usage: tests/packaging/openwrt.sh [BINARY]   (default build/ftp-alg)
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
bin=$(realpath "${1:-build/ftp-alg}")
here=$src/tests/packaging
init=$src/conf/openwrt/ftp-alg.init
tmp=$(mktemp -d /tmp/ftp-alg-openwrt.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check <description> <command...>
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- the feed Makefile, against stubs of what an OpenWrt tree provides
mkdir -p "$tmp/owrt/include"
cat >"$tmp/owrt/rules.mk" <<'MK'
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
INSTALL_DATA:=install -m0644
CP:=cp -fpR
MK
cat >"$tmp/owrt/include/package.mk" <<'MK'
PKG_BUILD_DIR ?= $(TOPDIR)/build_dir/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR ?= $(PKG_BUILD_DIR)/ipkg-install
# What BuildPackage of OpenWrt needs of a package, and targets that run its parts.
define BuildPackage
$(eval $(Package/$(1)))
$(foreach v,PKG_NAME PKG_VERSION PKG_RELEASE PKG_LICENSE PKG_MAINTAINER,$(if $($(v)),,$(error $(v) is not set)))
$(foreach v,SECTION CATEGORY TITLE DEPENDS,$(if $($(v)),,$(error $(v) of Package/$(1) is not set)))
$(if $(Package/$(1)/description),,$(error Package/$(1)/description is not set))
print-$(1):
	@echo 'DEPENDS=$(strip $(DEPENDS))'
	@echo 'MESON_ARGS=$(strip $(MESON_ARGS))'
	@echo 'CONFFILES=$(strip $(Package/$(1)/conffiles))'
prepare-$(1):
	$$(Build/Prepare)
install-$(1):
	$$(call Package/$(1)/install,$$(ROOT))
endef
MK
echo 'MESON_ARGS:=' >"$tmp/owrt/include/meson.mk"
mk() { make --no-print-directory -C "$src/conf/openwrt" TOPDIR="$tmp/owrt" "$@"; }

if mk -s print-ftp-alg >"$tmp/vars" 2>"$tmp/make.err"; then
  pass "the feed Makefile parses and sets every variable a package needs"
else
  cat "$tmp/make.err"; fail "the feed Makefile parses and sets every variable a package needs"
fi
depends=$(sed -n 's/^DEPENDS=//p' "$tmp/vars")
missing=
for d in libmnl libnftnl libnetfilter-queue libnetfilter-conntrack libcap-ng libseccomp \
         kmod-nft-core kmod-nft-nat kmod-nft-queue kmod-nfnetlink-queue kmod-nf-conntrack-netlink; do
  [[ " $depends " == *" +$d "* ]] || missing="$missing $d"
done
check "DEPENDS names the libraries and kernel modules${missing:+ (missing:$missing)}" test -z "$missing"
meson_args=$(sed -n 's/^MESON_ARGS=//p' "$tmp/vars")
check "MESON_ARGS selects the OpenWrt install ($meson_args)" grep -q -- "-Dopenwrt=true" <<<"$meson_args"

# Build/Prepare copies the tree; meson builds that copy as meson.mk would
# (prefix /usr, MESON_ARGS) and Package/ftp-alg/install picks the files.
pkgb=$tmp/build_dir/ftp-alg
if mk -s PKG_BUILD_DIR="$pkgb" prepare-ftp-alg >"$tmp/prepare.log" 2>&1 &&
   meson setup "$pkgb/openwrt-build" "$pkgb" --prefix=/usr $meson_args >"$tmp/meson.log" 2>&1 &&
   ninja -C "$pkgb/openwrt-build" >>"$tmp/meson.log" 2>&1 &&
   DESTDIR="$pkgb/ipkg-install" meson install -C "$pkgb/openwrt-build" >>"$tmp/meson.log" 2>&1; then
  pass "Build/Prepare copies a tree that meson builds and installs with MESON_ARGS"
else
  tail -20 "$tmp/prepare.log" "$tmp/meson.log"; fail "Build/Prepare and the meson build with MESON_ARGS"
fi
ipk=$tmp/ipk
if mk -s PKG_BUILD_DIR="$pkgb" PKG_INSTALL_DIR="$pkgb/ipkg-install" ROOT="$ipk" install-ftp-alg \
     >"$tmp/install.log" 2>&1; then
  pass "Package/ftp-alg/install runs"
else
  cat "$tmp/install.log"; fail "Package/ftp-alg/install runs"
fi
missing=
for f in usr/sbin/ftp-alg etc/init.d/ftp-alg etc/config/ftp-alg etc/ftp-alg/ftp-alg.conf; do
  [ -e "$ipk/$f" ] || missing="$missing $f"
done
check "the package holds binary, init script, UCI config and ftp-alg.conf${missing:+ (missing:$missing)}" \
  test -z "$missing"
check "the init script is executable and is the procd one" \
  bash -c "[ -x '$ipk/etc/init.d/ftp-alg' ] && cmp -s '$ipk/etc/init.d/ftp-alg' '$init'"
check "the package holds no systemd unit" test -z "$(find "$ipk" -name '*.service')"
conffiles=$(sed -n 's/^CONFFILES=//p' "$tmp/vars")
bad=
for f in $conffiles; do [ -f "$ipk$f" ] || bad="$bad $f"; done
check "every conffile ($conffiles) is in the package${bad:+ (not:$bad)}" \
  bash -c "[ -z '$bad' ] && [ -n '$conffiles' ]"

# --- the init script: UCI to ftp-alg.conf, and what procd is asked to run
# run_init <uci file> <shell code>: the code runs in sh with the stub of
# /lib/functions.sh, stubs of procd and logger, and the init script sourced.
run_init() {
  rm -rf "$tmp/etc" "$tmp/var" && mkdir -p "$tmp/etc/config" && cp "$1" "$tmp/etc/config/ftp-alg"
  : >"$tmp/procd" && : >"$tmp/logger"
  UCI_CONFIG_DIR=$tmp/etc/config sh -c '
    . "$1"; . "$2"
    PROG=$3; T=$4; GENERATED=$T/var/etc/ftp-alg.conf
    procd_open_instance() { echo open >>"$T/procd"; }
    procd_set_param() { echo "$*" >>"$T/procd"; }
    procd_close_instance() { echo close >>"$T/procd"; }
    logger() { cat >>"$T/logger"; }
    stop() { echo stop >>"$T/procd"; }
    eval "$5"' sh "$here/uci-stub.sh" "$init" "$bin" "$tmp" "$2"
}

run_init "$src/conf/openwrt/ftp-alg.config" 'config_load ftp-alg && ftp_alg_write_config "$T/shipped.conf"'
check "the shipped UCI config gives a file with no settings, which ftp-alg accepts" \
  bash -c "[ \"\$(grep -v '^#' '$tmp/shipped.conf')\" = '' ] && '$bin' --check-config '$tmp/shipped.conf' >/dev/null"

cat >"$tmp/sample" <<'UCI'
config ftp_alg 'main'
	option enabled '1'
	list control_port '21'
	list control_port '2121'
	option masquerade_address '203.0.113.1'
	option passive_ports '60000-60999'
	option pinhole_timeout '30'
	option min_data_port '1024'
	option max_pinholes_per_session '4'
	option max_pinholes_per_client '128'
	option max_pinholes '1000'
	option max_sessions '500'
	option max_sessions_per_client '50'
	option queue '40'
	option workers '2'
	option user 'nobody'
	option log_level 'debug'

config server 'files'
	option public '203.0.113.1:2200'
	option server '192.0.2.11:21'
	option passive_ports '61000-61099'
	option max_sessions '50'

config class 'lan'
	list from '192.0.2.0/24'
	list from '2001:db8:2::/64'
	option rewrite '0'

config class
	list from '198.51.100.0/24'
	option masquerade_address '203.0.113.9'
UCI
cat >"$tmp/expected" <<'CONF'
# Generated from /etc/config/ftp-alg by /etc/init.d/ftp-alg; edit that instead.
ControlPorts = 21, 2121
MasqueradeAddress = 203.0.113.1
PassivePorts = 60000-60999
PinholeTimeout = 30
MinDataPort = 1024
MaxPinholesPerSession = 4
MaxPinholesPerClient = 128
MaxPinholes = 1000
MaxSessions = 500
MaxSessionsPerClient = 50
Queue = 40
Workers = 2
User = nobody
LogLevel = debug

[server files]
Public = 203.0.113.1:2200
Server = 192.0.2.11:21
PassivePorts = 61000-61099
MaxSessions = 50

[class lan]
From = 192.0.2.0/24, 2001:db8:2::/64
Rewrite = no

[class cfg01]
From = 198.51.100.0/24
MasqueradeAddress = 203.0.113.9
CONF
run_init "$tmp/sample" 'start_service'
generated=$tmp/var/etc/ftp-alg.conf
if cmp -s "$tmp/expected" "$generated"; then
  pass "every UCI option, server and class becomes its line of ftp-alg.conf"
else
  diff -u "$tmp/expected" "$generated"; fail "every UCI option, server and class becomes its line of ftp-alg.conf"
fi
out=$("$bin" --check-config "$generated" 2>&1)
check "ftp-alg --check-config accepts the generated file ($out)" test "$out" = "$generated: OK"
check "procd is asked to run ftp-alg with the generated file" \
  grep -qx "command $bin --config $generated" "$tmp/procd"

sed -i "s/option passive_ports '61000-61099'/option passive_ports '61099-61000'/" "$tmp/sample"
run_init "$tmp/sample" 'start_service'
check "a bad UCI value starts nothing and the daemon's complaint, with its line, is logged" \
  bash -c "! grep -q open '$tmp/procd' && grep -q 'ftp-alg.conf:20:' '$tmp/logger'"

sed -i "s/option enabled '1'/option enabled '0'/" "$tmp/sample"
run_init "$tmp/sample" 'start_service'
check "enabled 0 starts nothing" test ! -s "$tmp/procd"

[ "$fails" -eq 0 ]
