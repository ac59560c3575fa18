# A stand-in for OpenWrt's /lib/functions.sh, enough for /etc/init.d/ftp-alg:
# config_load evaluates the UCI file as the shell code it is (as uci export
# output is evaluated there), and the accessors keep the same variables and
# the same semantics. UCI_CONFIG_DIR says where the config files are.
CONFIG_SECTIONS=
CONFIG_SECTION=
_uci_anon=0

package() { :; }

config() {
	local name="$2"
	if [ -z "$name" ]; then
		_uci_anon=$((_uci_anon + 1))
		name=cfg$(printf %02x "$_uci_anon")
	fi
	CONFIG_SECTION=$name
	CONFIG_SECTIONS="$CONFIG_SECTIONS $name"
	eval "CONFIG_${name}_TYPE=\$1"
}

option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}

list() {
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\${CONFIG_${CONFIG_SECTION}_$1} }\$2\""
}

config_load() {
	. "${UCI_CONFIG_DIR:-/etc/config}/$1"
}

config_get() {
	case $# in
	2) eval echo "\"\${CONFIG_$1_$2}\"" ;;
	*) eval "$1=\${CONFIG_$2_$3:-\$4}" ;;
	esac
}

config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	case "$_tmp" in
	1 | on | true | yes | enabled) _tmp=1 ;;
	0 | off | false | no | disabled) _tmp=0 ;;
	*) _tmp="$4" ;;
	esac
	eval "$1=\$_tmp"
}

config_foreach() {
	local fn="$1" type="$2" section cfgtype
	shift 2
	for section in $CONFIG_SECTIONS; do
		config_get cfgtype "$section" TYPE
		[ -n "$type" ] && [ "$cfgtype" != "$type" ] && continue
		"$fn" "$section" "$@"
	done
}

config_list_foreach() {
	local section="$1" opt="$2" fn="$3" val len c=1
	shift 3
	config_get len "$section" "${opt}_LENGTH"
	[ -z "$len" ] && return 0
	while [ "$c" -le "$len" ]; do
		config_get val "$section" "${opt}_ITEM$c"
		"$fn" "$val" "$@"
		c=$((c + 1))
	done
}
