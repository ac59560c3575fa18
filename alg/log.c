/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

/* Workers log while the main thread may change the level (reload). */
static _Atomic int max_lvl = LOG_LVL_INFO;
static int to_syslog;

void log_open(const char *ident, int max_level, int use_syslog)
{
	max_lvl = max_level;
	to_syslog = use_syslog;
	if (to_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void log_set_level(int max_level)
{
	max_lvl = max_level;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > max_lvl)
		return;
	static const char *const names[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
	/* Always standard error; syslog as well when that is not a terminal or the journal. */
	va_start(ap, fmt);
	if (to_syslog) {
		va_list copy;
		va_copy(copy, ap);
		vsyslog(level, fmt, copy);
		va_end(copy);
	}
	/* One line at a time, whichever thread logs. */
	flockfile(stderr);
	fprintf(stderr, "ftp-alg: %s: ", names[level & 7]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

const char *log_escape(const void *buf, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = buf;
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? 1 : 4;
		if (o + need + 4 > cap) {
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
