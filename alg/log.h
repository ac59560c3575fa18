/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/*
 * Where log lines go: standard error, once, wherever someone reads it. The
 * journal: each line prefixed with its priority as <N> (sd-daemon(3)), so
 * that journalctl -p works. A terminal, a file, a pipe (procd, a supervisor)
 * or a socket: as it is, its priority named in the text. Nothing or
 * /dev/null: syslog instead, which keeps the priorities.
 */
enum log_sink { LOG_SINK_STDERR, LOG_SINK_JOURNAL, LOG_SINK_SYSLOG };

/* The sink for fd (standard error), from its type and $JOURNAL_STREAM. */
enum log_sink log_choose(int fd);
void log_open(const char *ident, int max_level, enum log_sink sink);
/* Tests: write the standard error lines to f instead. */
void log_set_stream(FILE *f);
void log_set_level(int max_level);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The most verbose level written; read on every log call, changed by a reload. */
extern _Atomic int log_max_level;

/*
 * A line at level, written only if the level is on. A macro so that below
 * the level the arguments (escaping peer bytes, formatting addresses) are
 * never evaluated: a debug line costs one load when it is off.
 */
#define log_msg(level, ...)                                                                                            \
	do {                                                                                                           \
		int log_lvl_ = (level);                                                                                \
		if (log_lvl_ <= atomic_load_explicit(&log_max_level, memory_order_relaxed))                            \
			log_write(log_lvl_, __VA_ARGS__);                                                              \
	} while (0)

/*
 * Escape peer bytes for a log line: printable ASCII except '"' and '\\'
 * as is, everything else as \xNN. Always NUL-terminates; truncates with "...".
 */
const char *log_escape(const void *buf, size_t len, char *out, size_t cap);
