/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

/* Workers log while the main thread may change the level (reload). */
_Atomic int log_max_level = LOG_LVL_INFO;
static enum log_sink sink = LOG_SINK_STDERR;
static FILE *stream;

enum log_sink log_choose(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return LOG_SINK_SYSLOG;
	/* systemd sets JOURNAL_STREAM to the device and inode of the stream it gave us. */
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char end;
	if (js && sscanf(js, "%llu:%llu%c", &dev, &ino, &end) == 2 && dev == (unsigned long long)st.st_dev &&
	    ino == (unsigned long long)st.st_ino)
		return LOG_SINK_JOURNAL;
	/* Someone reads a pipe (procd, a supervisor, a test), a file or a terminal; /dev/null nobody does. */
	if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(fd))
		return LOG_SINK_STDERR;
	return LOG_SINK_SYSLOG;
}

void log_open(const char *ident, int max_level, enum log_sink to)
{
	log_max_level = max_level;
	sink = to;
	if (sink == LOG_SINK_SYSLOG)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void log_set_stream(FILE *f)
{
	stream = f;
}

void log_set_level(int max_level)
{
	log_max_level = max_level;
}

void log_write(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_max_level)
		return;
	static const char *const names[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
	va_start(ap, fmt);
	if (sink == LOG_SINK_SYSLOG) {
		vsyslog(level, fmt, ap);
		va_end(ap);
		return;
	}
	FILE *f = stream ? stream : stderr;
	/* One line at a time, whichever thread logs. */
	flockfile(f);
	if (sink == LOG_SINK_JOURNAL)
		fprintf(f, "<%d>", level & 7);
	fprintf(f, "ftp-alg: %s: ", names[level & 7]);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
	funlockfile(f);
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
