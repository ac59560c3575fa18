/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"

struct reports {
	int n;
	int lines[16];
	char msgs[16][256];
};

static void report(void *ctx, const char *path, int line, const char *msg)
{
	struct reports *r = ctx;
	(void)path;
	if (r->n < 16) {
		r->lines[r->n] = line;
		snprintf(r->msgs[r->n], sizeof(r->msgs[0]), "%s", msg);
	}
	r->n++;
}

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/ftp-alg-conf-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void defaults(void **state)
{
	struct alg_config c;
	(void)state;
	config_defaults(&c);
	assert_int_equal(c.ncontrol_ports, 1);
	assert_int_equal(c.control_ports[0], 21);
	assert_int_equal(c.pinhole_timeout, 60);
	assert_false(c.has_public4);
	assert_int_equal(c.passive_lo, 0);
}

static void good_file(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	char *p = write_tmp("# comment\n\nControlPorts = 21, 2121\nMasqueradeAddress = 203.0.113.1\n"
			    "PassivePorts = 60000-60100\nPinholeTimeout = 30\nLogLevel = debug\n");
	assert_int_equal(config_load(&c, p, report, &r), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(c.ncontrol_ports, 2);
	assert_int_equal(c.control_ports[1], 2121);
	assert_true(c.has_public4);
	assert_int_equal(c.public4[0], 203);
	assert_int_equal(c.passive_lo, 60000);
	assert_int_equal(c.passive_hi, 60100);
	assert_int_equal(c.pinhole_timeout, 30);
	unlink(p);
}

static void every_bad_line_reported(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	char *p = write_tmp("ControlPorts = 21\n"
			    "PassivePorts = 70000-70010\n"
			    "MasqueradeAddress = ftp.example.com\n"
			    "PinholeTimeout = 301\n"
			    "NoSuchThing = 1\n"
			    "ControlPorts = 0\n");
	assert_int_equal(config_load(&c, p, report, &r), -EINVAL);
	assert_int_equal(r.n, 5);
	int want[] = {2, 3, 4, 5, 6};
	for (int i = 0; i < 5; i++)
		assert_int_equal(r.lines[i], want[i]);
	assert_non_null(strstr(r.msgs[1], "not an IPv4 address"));
	assert_non_null(strstr(r.msgs[3], "unknown setting"));
	unlink(p);
}

static void values(void **state)
{
	struct alg_config c;
	char err[256];
	uint16_t lo, hi;
	(void)state;
	config_defaults(&c);
	assert_int_equal(config_set(&c, "PinholeTimeout", "0", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set(&c, "PinholeTimeout", "+5", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set(&c, "PinholeTimeout", "300", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "Queue", "65535", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_set(&c, "ControlPorts", "21,21a", err, sizeof(err)), -EINVAL);
	assert_int_equal(config_parse_port_range("100-99", &lo, &hi), -EINVAL);
	assert_int_equal(config_parse_port_range("100 200", &lo, &hi), 0);
	assert_int_equal(config_parse_port_range("0-10", &lo, &hi), -EINVAL);
	assert_int_equal(config_parse_port_range("-", &lo, &hi), -EINVAL);
}

static void missing_file(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/ftp-alg.conf", report, &r), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults), cmocka_unit_test(good_file), cmocka_unit_test(every_bad_line_reported),
		cmocka_unit_test(values), cmocka_unit_test(missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
