/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alg/log.h"

/* Lines written through the sink, read back from a memory stream. */
static char *capture(enum log_sink sink, int max_level, void (*emit)(void))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	log_open("test", max_level, sink);
	log_set_stream(f);
	emit();
	log_set_stream(NULL);
	fclose(f);
	return buf;
}

static void three_levels(void)
{
	log_msg(LOG_LVL_ERR, "event=fatal reason=%s", "poll");
	log_msg(LOG_LVL_WARN, "event=refused reason=bounce");
	log_msg(LOG_LVL_INFO, "event=reload file=x");
	log_msg(LOG_LVL_DEBUG, "event=open");
}

static void journal_lines_carry_their_priority(void **state)
{
	(void)state;
	char *out = capture(LOG_SINK_JOURNAL, LOG_LVL_DEBUG, three_levels);
	assert_string_equal(out, "<3>ftp-alg: error: event=fatal reason=poll\n"
				 "<4>ftp-alg: warning: event=refused reason=bounce\n"
				 "<6>ftp-alg: info: event=reload file=x\n"
				 "<7>ftp-alg: debug: event=open\n");
	free(out);
}

static void plain_lines_have_no_prefix_and_respect_the_level(void **state)
{
	(void)state;
	char *out = capture(LOG_SINK_STDERR, LOG_LVL_WARN, three_levels);
	assert_string_equal(out, "ftp-alg: error: event=fatal reason=poll\n"
				 "ftp-alg: warning: event=refused reason=bounce\n");
	free(out);
}

static void choose_by_stream(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct stat st;
	assert_int_equal(fstat(p[1], &st), 0);
	char js[64];
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);

	unsetenv("JOURNAL_STREAM");
	/* A pipe (procd, a supervisor) with no journal: its reader gets the lines, once. */
	assert_int_equal(log_choose(p[1]), LOG_SINK_STDERR);
	setenv("JOURNAL_STREAM", js, 1);
	assert_int_equal(log_choose(p[1]), LOG_SINK_JOURNAL);
	/* JOURNAL_STREAM inherited by a child whose standard error went elsewhere. */
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	assert_int_equal(log_choose(p[1]), LOG_SINK_STDERR);
	setenv("JOURNAL_STREAM", "garbage", 1);
	assert_int_equal(log_choose(p[1]), LOG_SINK_STDERR);
	unsetenv("JOURNAL_STREAM");

	char path[] = "/tmp/ftp-alg-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(log_choose(fd), LOG_SINK_STDERR);
	unlink(path);
	close(fd);
	int null = open("/dev/null", O_WRONLY);
	assert_int_equal(log_choose(null), LOG_SINK_SYSLOG);
	close(null);
	assert_int_equal(log_choose(p[0] + 1000), LOG_SINK_SYSLOG);
	close(p[0]);
	close(p[1]);
}

/* Below the level a line's arguments are never evaluated: escaping and formatting cost nothing. */
static int escapes;
static const char *counted_escape(const char *s)
{
	escapes++;
	return s;
}

static void below_level_costs_nothing(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	log_open("test", LOG_LVL_WARN, LOG_SINK_STDERR);
	log_set_stream(f);
	escapes = 0;
	log_msg(LOG_LVL_DEBUG, "session=1 event=open line=\"%s\"", counted_escape("x"));
	log_msg(LOG_LVL_INFO, "session=1 event=rewrite line=\"%s\"", counted_escape("y"));
	assert_int_equal(escapes, 0);
	log_msg(LOG_LVL_WARN, "session=1 event=refused line=\"%s\"", counted_escape("z"));
	assert_int_equal(escapes, 1);
	/* A reload that raises the level turns them on. */
	log_set_level(LOG_LVL_DEBUG);
	log_msg(LOG_LVL_DEBUG, "session=1 event=open line=\"%s\"", counted_escape("x"));
	assert_int_equal(escapes, 2);
	log_set_stream(NULL);
	fclose(f);
	assert_string_equal(buf, "ftp-alg: warning: session=1 event=refused line=\"z\"\n"
				 "ftp-alg: debug: session=1 event=open line=\"x\"\n");
	free(buf);
	log_open("test", 0, LOG_SINK_STDERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(journal_lines_carry_their_priority),
	    cmocka_unit_test(plain_lines_have_no_prefix_and_respect_the_level),
	    cmocka_unit_test(choose_by_stream),
	    cmocka_unit_test(below_level_costs_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
