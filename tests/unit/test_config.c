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
#include <sys/socket.h>

#include "conf/config.h"

struct reports {
	int n;
	int lines[16];
	char msgs[16][256];
};

static char last_origin[64];

static void report(void *ctx, const char *path, int line, const char *msg)
{
	struct reports *r = ctx;
	snprintf(last_origin, sizeof(last_origin), "%s", path);
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
	struct reports r = {0};
	uint16_t lo, hi;
	(void)state;
	config_defaults(&c);
	assert_int_equal(config_set(&c, "PinholeTimeout", "0", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "PinholeTimeout", "+5", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "PinholeTimeout", "300", "--flag", 0, report, &r), 0);
	assert_int_equal(config_set(&c, "Queue", "65535", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(c.workers, 1);
	assert_int_equal(config_set(&c, "Workers", "0", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "Workers", "17", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "Workers", "4", "--flag", 0, report, &r), 0);
	assert_int_equal(c.workers, 4);
	/* Values that wrap a 32-bit long to a valid one (4294967297 = 2^32 + 1) are out of range on every build. */
	assert_int_equal(config_set(&c, "Workers", "4294967297", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "PinholeTimeout", "4294967306", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "MinDataPort", "4294968320", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "MinDataPort", "99999999999999999999999", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(c.workers, 4);
	assert_int_equal(c.pinhole_timeout, 300);
	assert_int_equal(c.min_data_port, 1024);
	assert_int_equal(config_set(&c, "ControlPorts", "21,21a", "--flag", 0, report, &r), -EINVAL);
	/* The hold limits stay well below the kernel queue's 4096. */
	assert_int_equal(c.hold_max, 1024);
	assert_int_equal(c.hold_max_per_client, 64);
	assert_int_equal(config_set(&c, "HoldMax", "2049", "--flag", 0, report, &r), -EINVAL);
	assert_int_equal(config_set(&c, "HoldMaxPerClient", "0", "--flag", 0, report, &r), -EINVAL);
	assert_string_equal(r.msgs[r.n - 1], "'0' is not a number from 1 to 2048");
	assert_int_equal(config_set(&c, "HoldMax", "512", "--flag", 0, report, &r), 0);
	assert_int_equal(config_set(&c, "HoldMaxPerClient", "16", "--flag", 0, report, &r), 0);
	assert_int_equal(c.hold_max, 512);
	assert_int_equal(c.hold_max_per_client, 16);
	assert_int_equal(config_parse_port_range("100-99", &lo, &hi), -EINVAL);
	/* The man page documents LO-HI: a space between the ports is refused. */
	assert_int_equal(config_parse_port_range("100 200", &lo, &hi), -EINVAL);
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

static void sections(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	char *p = write_tmp("ControlPorts = 21\n"
			    "[server files]\n"
			    "Public = 203.0.113.2:2121\n"
			    "Server = 192.0.2.11:21\n"
			    "PassivePorts = 40000-40009\n"
			    "MaxSessions = 2\n"
			    "[server v6]\n"
			    "Public = [2001:db8:1::4]:21\n"
			    "Server = [2001:db8:3::10]:21\n"
			    "[class lan]\n"
			    "From = 192.0.2.0/24, 2001:db8:2::/64\n"
			    "Rewrite = no\n");
	assert_int_equal(config_load(&c, p, report, &r), 0);
	assert_int_equal(c.nservers, 2);
	assert_string_equal(c.servers[0].name, "files");
	assert_int_equal(c.servers[0].pub_port, 2121);
	assert_int_equal(c.servers[0].passive_lo, 40000);
	assert_int_equal(c.servers[1].family, AF_INET6);
	const uint8_t pub[4] = {203, 0, 113, 2}, lan[4] = {192, 0, 2, 77}, out[4] = {203, 0, 113, 10};
	assert_ptr_equal(config_server_for(&c, AF_INET, pub, 2121), &c.servers[0]);
	assert_null(config_server_for(&c, AF_INET, pub, 21));
	assert_non_null(config_class_for(&c, AF_INET, lan));
	assert_true(config_class_for(&c, AF_INET, lan)->no_rewrite);
	assert_null(config_class_for(&c, AF_INET, out));
	unlink(p);
}

static void bad_sections(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	char *p = write_tmp("[server a]\n"		  /* 1: lacks Server */
			    "Public = 203.0.113.2:2121\n" /* 2 */
			    "[server b]\n"		  /* 3: same public port as a */
			    "Public = 203.0.113.2:2121\n" /* 4 */
			    "Server = 192.0.2.11:70000\n" /* 5: bad port */
			    "Server = 192.0.2.11:21\n"	  /* 6 */
			    "[bogus]\n"			  /* 7 */
			    "x = 1\n"			  /* 8 */
			    "[class c]\n"		  /* 9: no From */
			    "Rewrite = maybe\n"		  /* 10 */
			    "this line has no equals\n"); /* 11 */
	assert_int_equal(config_load(&c, p, report, &r), -EINVAL);
	int want[] = {5, 7, 10, 11, 1, 3, 9};
	assert_int_equal(r.n, 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(r.lines[i], want[i]);
	unlink(p);
}

/* Loads text and returns the reported line numbers, in order. */
static int load_text(struct alg_config *c, const char *text, struct reports *r)
{
	char *p = write_tmp(text);
	int rc = config_load(c, p, report, r);
	unlink(p);
	return rc;
}

static void indented_line_is_an_error(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c, "ControlPorts = 21\n  2121\n", &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 2);
	assert_non_null(strstr(r.msgs[0], "indented"));
	assert_int_equal(c.ncontrol_ports, 1);
	assert_int_equal(c.control_ports[0], 21);
}

static void duplicate_and_empty_sections(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "[server a]\n"	       /* 1 */
				   "Public = 203.0.113.2:21\n" /* 2 */
				   "[server b]\n"	       /* 3: empty */
				   "[server a]\n"	       /* 4: again */
				   "Server = 192.0.2.10:21\n"  /* 5 */
				   "[class lan]\n"	       /* 6: empty */
				   "[class lan]\n"	       /* 7: again */
				   "From = 192.0.2.0/24\n",    /* 8 */
				   &r),
			 -EINVAL);
	int want[] = {4, 7, 1, 3, 6};
	assert_int_equal(r.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r.lines[i], want[i]);
	assert_non_null(strstr(r.msgs[0], "[server a] again"));
	assert_non_null(strstr(r.msgs[0], "line 1"));
	assert_non_null(strstr(r.msgs[3], "[server b] is empty"));
	assert_non_null(strstr(r.msgs[4], "[class lan] is empty"));
}

static void masquerade_family(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "MasqueradeAddress = 2001:db8::1\n"	    /* 1: global is IPv4 only */
				   "[server a]\n"			    /* 2 */
				   "MasqueradeAddress = 2001:db8::5\n"	    /* 3: the server is IPv4 */
				   "Public = 203.0.113.2:21\n"		    /* 4 */
				   "Server = 192.0.2.10:21\n"		    /* 5 */
				   "[server b]\n"			    /* 6 */
				   "Public = [2001:db8:1::4]:21\n"	    /* 7 */
				   "Server = [2001:db8:3::10]:21\n"	    /* 8 */
				   "MasqueradeAddress = 2001:db8:1::9\n"    /* 9: good */
				   "[class mixed]\n"			    /* 10 */
				   "From = 192.0.2.0/24, 2001:db8:2::/64\n" /* 11 */
				   "MasqueradeAddress = 198.51.100.7\n",    /* 12: for IPv6 clients too */
				   &r),
			 -EINVAL);
	int want[] = {1, 3, 12};
	assert_int_equal(r.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r.lines[i], want[i]);
	assert_non_null(strstr(r.msgs[1], "is IPv6 but [server a] is IPv4"));
	assert_non_null(strstr(r.msgs[2], "2001:db8:2::/64"));
}

static void all_syntax_errors(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "PinholeTimeout = 30 ; half a minute\n" /* 1: fine */
				   "LogLevel = debug\r\n"		   /* 2: fine */
				   "no equals here\n"			   /* 3 */
				   "[server x\n"			   /* 4 */
				   " = 5\n"				   /* 5: indented */
				   "= 5\n"				   /* 6: no key */
				   "also no equals\n"			   /* 7 */
				   "[r a]\n"				   /* 8: shorter than "server " */
				   "[se]\n",				   /* 9 */
				   &r),
			 -EINVAL);
	int want[] = {3, 4, 5, 6, 7, 8, 9};
	assert_int_equal(r.n, 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(r.lines[i], want[i]);
	assert_int_equal(c.pinhole_timeout, 30);
	assert_int_equal(c.log_level, 7);
}

static void directory_is_refused(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/tmp", report, &r), -EISDIR);
}

static void check_queue_range(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c, "Queue = 65534\nWorkers = 2\n", &r), 0);
	assert_int_equal(config_check(&c, false, report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 1);
	assert_string_equal(r.msgs[0], "Queue 65534 with 2 workers needs queues up to 65537; the last is 65535 "
				       "(worker k uses Queue+2k and Queue+2k+1)");
	/* The largest that fits. */
	r.n = 0;
	assert_int_equal(config_set(&c, "Queue", "65532", "--queue", 0, report, &r), 0);
	assert_int_equal(config_check(&c, false, report, &r), 0);
	assert_int_equal(r.n, 0);
}

static void check_user(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(config_check(&c, true, report, &r), 0);
	assert_int_equal(load_text(&c, "# x\nUser = nosuchuser\n", &r), 0);
	assert_int_equal(config_check(&c, false, report, &r), 0);
	assert_int_equal(config_check(&c, true, report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 2);
	assert_string_equal(r.msgs[0], "no user 'nosuchuser' to run as");
}

static void control_group_and_outside(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c, "Outside = wan, ppp0 wwan0\nControlGroup = nosuchgroup\n", &r), 0);
	assert_int_equal(c.noutside, 3);
	assert_string_equal(c.outside[0], "wan");
	assert_string_equal(c.outside[1], "ppp0");
	assert_string_equal(c.outside[2], "wwan0");
	/* The group is looked up where the user is: at start, not at reload. */
	assert_int_equal(config_check(&c, false, report, &r), 0);
	assert_int_equal(config_check(&c, true, report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 2);
	assert_string_equal(r.msgs[0], "no group 'nosuchgroup' for the control socket");

	memset(&r, 0, sizeof(r));
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "Outside = averyveryverylongname\n" /* 1: over IFNAMSIZ */
				   "Outside = eth0\n"		       /* 2: fine after a refused line */
				   "ControlGroup = Bad Group\n",       /* 3 */
				   &r),
			 -EINVAL);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.lines[0], 1);
	assert_string_equal(r.msgs[0], "'averyveryverylongname' is not an interface name");
	assert_int_equal(r.lines[1], 3);
	assert_int_equal(c.noutside, 1);
}

static void check_passive_overlaps(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "ControlPorts = 21, 2100\n"	   /* 1 */
				   "PassivePorts = 2000-2200\n"	   /* 2: holds 2100 and 2121 */
				   "[server a]\n"		   /* 3 */
				   "Public = 203.0.113.2:2121\n"   /* 4 */
				   "Server = 192.0.2.11:21\n"	   /* 5 */
				   "PassivePorts = 2150-2300\n"	   /* 6: overlaps line 2 */
				   "[server b]\n"		   /* 7 */
				   "Public = 203.0.113.3:21\n"	   /* 8 */
				   "Server = 192.0.2.12:21\n"	   /* 9 */
				   "PassivePorts = 40000-40010\n", /* 10: fine */
				   &r),
			 0);
	assert_int_equal(config_check(&c, false, report, &r), -EINVAL);
	int want[] = {2, 2, 6};
	assert_int_equal(r.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r.lines[i], want[i]);
	assert_string_equal(r.msgs[0], "PassivePorts 2000-2200 holds control port 2100 (ControlPorts)");
	assert_string_equal(r.msgs[1], "PassivePorts 2000-2200 holds port 2121, where [server a] is published");
	assert_string_equal(r.msgs[2], "PassivePorts 2150-2300 overlaps the global PassivePorts (2000-2200): give "
				       "each its own range");
	/* A flag is named instead of a line. */
	r.n = 0;
	assert_int_equal(config_set(&c, "PassivePorts", "5-1", "--passive-ports", 0, report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 0);
	assert_string_equal(last_origin, "--passive-ports");
	assert_int_equal(c.passive_lo, 2000);
	assert_int_equal(config_set(&c, "PassivePorts", "20-22", "--passive-ports", 0, report, &r), 0);
	assert_int_equal(config_set(&c, "ControlPorts", "2121", "--control-ports", 0, report, &r), 0);
	r.n = 0;
	assert_int_equal(config_check(&c, false, report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 0);
	assert_string_equal(r.msgs[0], "PassivePorts 20-22 holds port 21, where [server b] is published");
	assert_string_equal(last_origin, "--passive-ports");
}

/* A buffer of exactly the file's bytes, no NUL after it: what the fuzzer gives, and where a read past it shows. */
static void parse_exact_buffer(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	static const char text[] = "[r a]";
	char *buf = malloc(sizeof(text) - 1);
	assert_non_null(buf);
	memcpy(buf, text, sizeof(text) - 1);
	assert_int_equal(config_parse(&c, buf, sizeof(text) - 1, "x.conf", report, &r), -EINVAL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0], 1);
	assert_non_null(strstr(r.msgs[0], "unknown section [r a]"));
	free(buf);
}

static void key_set_twice(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "PinholeTimeout = 30\n"     /* 1 */
				   "ControlPorts = 21\n"       /* 2 */
				   "pinholetimeout = 45\n"     /* 3: again, any case */
				   "[server a]\n"	       /* 4 */
				   "Public = 203.0.113.2:21\n" /* 5 */
				   "Server = 192.0.2.10:21\n"  /* 6 */
				   "Server = 192.0.2.11:21\n"  /* 7: again in the section */
				   "[server b]\n"	       /* 8 */
				   "Public = 203.0.113.3:21\n" /* 9: same key, another section: fine */
				   "Server = 192.0.2.12:21\n", /* 10 */
				   &r),
			 -EINVAL);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.lines[0], 3);
	assert_string_equal(r.msgs[0], "pinholetimeout is set again: it was set at line 1; set each key once");
	assert_int_equal(r.lines[1], 7);
	assert_string_equal(r.msgs[1], "Server is set again: it was set at line 6 in this section; set each key once");
	/* The first value stays: nothing silently took the later one. */
	assert_int_equal(c.pinhole_timeout, 30);
}

static void passive_ports_need_the_dash(void **state)
{
	struct alg_config c;
	struct reports r = {0};
	(void)state;
	config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "PassivePorts = 60000 60999\n"
				   "[server a]\n"
				   "Public = 203.0.113.2:21\n"
				   "Server = 192.0.2.10:21\n"
				   "PassivePorts = 61000 61099\n",
				   &r),
			 -EINVAL);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.lines[0], 1);
	assert_string_equal(r.msgs[0], "'60000 60999' is not a port range LO-HI within 1-65535 (the two ports are "
				       "joined by '-', as in 60000-60999)");
	assert_int_equal(r.lines[1], 5);
	assert_non_null(strstr(r.msgs[1], "'61000 61099' is not a port range LO-HI"));
	memset(&r, 0, sizeof(r));
	config_defaults(&c);
	assert_int_equal(load_text(&c, "PassivePorts = 60000-60999\n", &r), 0);
	assert_int_equal(c.passive_lo, 60000);
	assert_int_equal(c.passive_hi, 60999);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(good_file),
	    cmocka_unit_test(every_bad_line_reported),
	    cmocka_unit_test(values),
	    cmocka_unit_test(missing_file),
	    cmocka_unit_test(sections),
	    cmocka_unit_test(bad_sections),
	    cmocka_unit_test(indented_line_is_an_error),
	    cmocka_unit_test(duplicate_and_empty_sections),
	    cmocka_unit_test(masquerade_family),
	    cmocka_unit_test(all_syntax_errors),
	    cmocka_unit_test(directory_is_refused),
	    cmocka_unit_test(check_queue_range),
	    cmocka_unit_test(check_user),
	    cmocka_unit_test(check_passive_overlaps),
	    cmocka_unit_test(parse_exact_buffer),
	    cmocka_unit_test(key_set_twice),
	    cmocka_unit_test(control_group_and_outside),
	    cmocka_unit_test(passive_ports_need_the_dash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
