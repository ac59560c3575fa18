/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_open(const char *ident, int max_level, int use_syslog);
void log_set_level(int max_level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Escape peer bytes for a log line: printable ASCII except '"' and '\\'
 * as is, everything else as \xNN. Always NUL-terminates; truncates with "...".
 */
const char *log_escape(const void *buf, size_t len, char *out, size_t cap);
