/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg/ftp.h"

#define S(x) x, sizeof(x) - 1

static void verbs(void **state)
{
	(void)state;
	assert_int_equal(ftp_command_verb(S("PASV\r\n")), FTP_VERB_PASV);
	assert_int_equal(ftp_command_verb(S("pasv\r\n")), FTP_VERB_PASV);
	assert_int_equal(ftp_command_verb(S("EpSv\r\n")), FTP_VERB_EPSV);
	assert_int_equal(ftp_command_verb(S("EPSV ALL\r\n")), FTP_VERB_EPSV);
	assert_int_equal(ftp_command_verb(S("PORT 1,2,3,4,5,6\r\n")), FTP_VERB_PORT);
	assert_int_equal(ftp_command_verb(S("AUTH TLS\r\n")), FTP_VERB_AUTH);
	assert_int_equal(ftp_command_verb(S("PASVX\r\n")), FTP_VERB_OTHER);
	assert_int_equal(ftp_command_verb(S(" PASV\r\n")), FTP_VERB_OTHER);
	assert_int_equal(ftp_command_verb(S("PAS")), FTP_VERB_OTHER);
	assert_int_equal(ftp_command_verb(S("USER PASV\r\n")), FTP_VERB_USER);
	assert_int_equal(ftp_command_verb(S("NOOP PASV\r\n")), FTP_VERB_OTHER);
}

/* Servers split a command on any white space (ProFTPD, Pure-FTPd) and stop at a NUL: so does the verb. */
static void verb_separators(void **state)
{
	struct ftp_endpoint ep;
	struct ftp_span span;
	(void)state;
	static const char *const ports[] = {"PORT\t192,0,2,10,4,1\r\n", "PORT\v192,0,2,10,4,1\r\n",
					    "PORT\f192,0,2,10,4,1\r\n", "PORT\r192,0,2,10,4,1\r\n"};
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		assert_int_equal(ftp_command_verb(ports[i], strlen(ports[i])), FTP_VERB_PORT);
		assert_int_equal(ftp_parse_port(ports[i], strlen(ports[i]), &ep, &span), 0);
		assert_int_equal(span.off, 5);
		assert_int_equal(ep.port, 1025);
	}
	assert_int_equal(ftp_command_verb(S("PORT\0"
					    "192,0,2,10,4,1\r\n")),
			 FTP_VERB_PORT);
	assert_int_equal(ftp_command_verb(S("EPRT\t|1|192.0.2.10|6275|\r\n")), FTP_VERB_EPRT);
	assert_int_equal(ftp_parse_eprt(S("EPRT\t|1|192.0.2.10|6275|\r\n"), &ep, &span), 0);
	assert_int_equal(ftp_command_verb(S("LPRT\v4,4,192,0,2,10,2,4,1\r\n")), FTP_VERB_LPRT);
	assert_int_equal(ftp_command_verb(S("PASV\t\r\n")), FTP_VERB_PASV);
	assert_int_equal(ftp_command_verb(S("PORTS 1\r\n")), FTP_VERB_OTHER);
	assert_int_equal(ftp_command_verb(S("PORT1,2\r\n")), FTP_VERB_OTHER);
	assert_true(ftp_plausible_first_command(S("USER\tanonymous\r\n")));

	/* What a server that drops Telnet commands and leading white space sees. */
	bool hidden;
	const struct ftp_command *c = ftp_command_seen(S("PORT 192,0,2,10,4,1\r\n"), &hidden);
	assert_non_null(c);
	assert_int_equal(c->verb, FTP_VERB_PORT);
	assert_false(hidden);
	static const char *const hid[] = {
	    " PORT 1\r\n",
	    "\t\vPORT\t1\r\n",
	    "\xff\xf4\xff\xf2PORT 1\r\n",
	    "P\xff\xf1ORT\t1\r\n",
	    "\xff\xfb\x01 EPRT |1|\r\n",
	    "                                                                  LPRT 1\r\n"};
	for (size_t i = 0; i < sizeof(hid) / sizeof(hid[0]); i++) {
		c = ftp_command_seen(hid[i], strlen(hid[i]), &hidden);
		if (!c || c->form == FTP_FORM_NONE || !hidden)
			fail_msg("case %zu: not seen as a hidden PORT/EPRT/LPRT", i);
	}
	assert_null(ftp_command_seen(S("\0PORT 1\r\n"), &hidden));
	assert_null(ftp_command_seen(S("NOOP PORT 1\r\n"), &hidden));
	/* A partial line is held while it may still become one. */
	assert_true(ftp_command_may_be_checked(S(" ")));
	assert_true(ftp_command_may_be_checked(S("\xff")));
	assert_true(ftp_command_may_be_checked(S("\xff\xf4 P")));
	assert_true(ftp_command_may_be_checked(S("ep")));
	assert_false(ftp_command_may_be_checked(S("PX")));
	assert_false(ftp_command_may_be_checked(S("USER")));
}

/* NAT slipstreaming: a browser's request, even with a method that is an FTP verb. */
static void http_shapes(void **state)
{
	(void)state;
	assert_true(ftp_http_shaped(S("USER / HTTP/1.1\r\n")));
	assert_true(ftp_http_shaped(S("GET /index.html HTTP/1.0\r\n")));
	assert_true(ftp_http_shaped(S("PRI * HTTP/2.0\r\n")));
	assert_true(ftp_http_shaped(S("Host: 192.0.2.10:2121\r\n")));
	assert_true(ftp_http_shaped(S("Content-Type:text/plain\r\n")));
	assert_false(ftp_http_shaped(S("USER anonymous\r\n")));
	assert_false(ftp_http_shaped(S("PASS user:secret\r\n")));
	assert_false(ftp_http_shaped(S("USER /HTTP/1.1\r\n")));
	assert_false(ftp_http_shaped(S("RETR HTTP/1.1\r\n")));
	assert_false(ftp_http_shaped(S(":x\r\n")));
	assert_false(ftp_http_shaped(S("\r\n")));
}

static void first_commands(void **state)
{
	(void)state;
	assert_true(ftp_plausible_first_command(S("USER anonymous\r\n")));
	assert_true(ftp_plausible_first_command(S("auth tls\r\n")));
	assert_true(ftp_plausible_first_command(S("FEAT\r\n")));
	assert_false(ftp_plausible_first_command(S("GET / HTTP/1.1\r\n")));
	assert_false(ftp_plausible_first_command(S("POST /x HTTP/1.1\r\n")));
	assert_false(ftp_plausible_first_command(S("PASV\r\n")));
	assert_false(ftp_plausible_first_command(S("USERX\r\n")));
	assert_false(ftp_plausible_first_command(S("\x16\x03\x01")));
}

static void reply_codes(void **state)
{
	char sep;
	(void)state;
	assert_int_equal(ftp_reply_code(S("227 Entering\r\n"), &sep), 227);
	assert_int_equal(sep, ' ');
	assert_int_equal(ftp_reply_code(S("227-first\r\n"), &sep), 227);
	assert_int_equal(sep, '-');
	assert_int_equal(ftp_reply_code(S("200\r\n"), &sep), 200);
	assert_int_equal(ftp_reply_code(S("2270 x"), &sep), -EINVAL);
	assert_int_equal(ftp_reply_code(S("627 x"), &sep), -EINVAL);
	assert_int_equal(ftp_reply_code(S(" 227 x"), &sep), -EINVAL);
	assert_int_equal(ftp_reply_code(S("22"), &sep), -EINVAL);
}

struct case227 {
	const char *line;
	int rc;
	const char *addr;
	uint16_t port;
	const char *span;
};

static const struct case227 cases227[] = {
    {"227 Entering Passive Mode (192,0,2,10,195,80).\r\n", 0, "192.0.2.10", 50000, "192,0,2,10,195,80"},
    {"227 Entering Passive Mode (192,0,2,10,195,80)\r\n", 0, "192.0.2.10", 50000, "192,0,2,10,195,80"},
    {"227 =192,0,2,10,0,21\r\n", 0, "192.0.2.10", 21, "192,0,2,10,0,21"},
    {"227 Entering Passive Mode 192,0,2,10,4,1\r\n", 0, "192.0.2.10", 1025, "192,0,2,10,4,1"},
    {"227 Entering Passive Mode (192,000,002,010,004,001)\r\n", 0, "192.0.2.10", 1025, "192,000,002,010,004,001"},
    {"227 Entering Passive Mode (192,0,2,10,195,80)", 0, "192.0.2.10", 50000, "192,0,2,10,195,80"},
    /* hostile or malformed */
    {"227 Entering Passive Mode (192,0,2,256,195,80)\r\n", -ERANGE, NULL, 0, NULL},
    {"227 Entering Passive Mode (192,0,2,10,256,80)\r\n", -ERANGE, NULL, 0, NULL},
    {"227 Entering Passive Mode (192,0,2,10,0,0)\r\n", -ERANGE, NULL, 0, NULL},
    {"227 Entering Passive Mode (0192,0,2,10,195,80)\r\n", -ERANGE, NULL, 0, NULL},
    {"227 Entering Passive Mode (192,0,2,10,195,80,1)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (192,0,2,10,195)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (192, 0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (+192,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (0xc0,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (-1,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 Entering Passive Mode (\xef\xbc\x91,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227-Entering Passive Mode (192,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"228 Entering Passive Mode (192,0,2,10,195,80)\r\n", -EINVAL, NULL, 0, NULL},
    {"227 no numbers here\r\n", -EINVAL, NULL, 0, NULL},
    {"227 \r\n", -EINVAL, NULL, 0, NULL},
    {"227", -EINVAL, NULL, 0, NULL},
};

static void parse_227(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases227) / sizeof(cases227[0]); i++) {
		const struct case227 *c = &cases227[i];
		struct ftp_endpoint ep;
		struct ftp_span span;
		int rc = ftp_parse_227(c->line, strlen(c->line), &ep, &span);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->line, rc, c->rc);
		if (rc < 0)
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, ep.addr, a, sizeof(a));
		assert_string_equal(a, c->addr);
		assert_int_equal(ep.port, c->port);
		assert_int_equal(span.len, strlen(c->span));
		assert_memory_equal(c->line + span.off, c->span, span.len);
	}
}

static void parse_229(void **state)
{
	uint16_t port;
	struct ftp_span span;
	(void)state;
	assert_int_equal(ftp_parse_229(S("229 Entering Extended Passive Mode (|||6446|)\r\n"), &port, &span), 0);
	assert_int_equal(port, 6446);
	assert_int_equal(span.len, 4);
	assert_int_equal(ftp_parse_229(S("229 Entering Extended Passive Mode (!!!65535!)\r\n"), &port, &span), 0);
	assert_int_equal(port, 65535);
	assert_int_equal(ftp_parse_229(S("229 x (|||65536|)\r\n"), &port, &span), -ERANGE);
	assert_int_equal(ftp_parse_229(S("229 x (|||0|)\r\n"), &port, &span), -ERANGE);
	assert_int_equal(ftp_parse_229(S("229 x (|||123456|)\r\n"), &port, &span), -ERANGE);
	assert_int_equal(ftp_parse_229(S("229 x (||!6446|)\r\n"), &port, &span), -EINVAL);
	assert_int_equal(ftp_parse_229(S("229 x (11164461)\r\n"), &port, &span), -EINVAL);
	assert_int_equal(ftp_parse_229(S("229 x (|||6446!)\r\n"), &port, &span), -EINVAL);
	assert_int_equal(ftp_parse_229(S("229 x (|||6446|\r\n"), &port, &span), -EINVAL);
	assert_int_equal(ftp_parse_229(S("229 x |||6446|\r\n"), &port, &span), -EINVAL);
	assert_int_equal(ftp_parse_229(S("229-x (|||6446|)\r\n"), &port, &span), -EINVAL);
}

static void parse_port_eprt(void **state)
{
	struct ftp_endpoint ep;
	struct ftp_span span;
	(void)state;
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,10,4,1\r\n"), &ep, &span), 0);
	assert_int_equal(ep.port, 1025);
	assert_int_equal(span.off, 5);
	assert_int_equal(ftp_parse_port(S("port 192,0,2,10,4,1\r\n"), &ep, &span), 0);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,10,4,1 x\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,300,4,1\r\n"), &ep, &span), -ERANGE);
	assert_int_equal(ftp_parse_port(S("PORT  192,0,2,10,4,1\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|192.0.2.10|6275|\r\n"), &ep, &span), 0);
	assert_int_equal(ep.family, AF_INET);
	assert_int_equal(ep.port, 6275);
	assert_int_equal(ftp_parse_eprt(S("EPRT |2|2001:db8::1|6275|\r\n"), &ep, &span), 0);
	assert_int_equal(ep.family, AF_INET6);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|192.0.2|6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|192.0.2.10|70000|\r\n"), &ep, &span), -ERANGE);
	assert_int_equal(ftp_parse_eprt(S("EPRT |3|192.0.2.10|6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|192.0.2.10|6275\r\n"), &ep, &span), -EINVAL);
	/* Leading zeros: inet_aton reads 010 as 8, so what passes untouched must not have them. */
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|203.0.113.010|6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|203.0.113.10|06275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |01|203.0.113.10|6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|203.0.113.+10|6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|203.0.113.10|+6275|\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_eprt(S("EPRT |1|203.0.113.0|6275|\r\n"), &ep, &span), 0);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,010,4,1\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,10,04,1\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,2,10,4,-1\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_port(S("PORT 192,0,0,0,4,0\r\n"), &ep, &span), 0);
	/* A 227 without parentheses: a sign before its numbers is not skipped as text. */
	assert_int_equal(ftp_parse_227(S("227 Entering Passive Mode -192,0,2,10,4,1\r\n"), &ep, &span), -EINVAL);
	assert_int_equal(ftp_parse_227(S("227 Entering Passive Mode +192,0,2,10,4,1\r\n"), &ep, &span), -EINVAL);
}

static void format_and_splice(void **state)
{
	struct ftp_endpoint ep = {.family = AF_INET, .addr = {203, 0, 113, 1}, .port = 50000};
	char out[128];
	(void)state;
	int n = ftp_format_hostport(&ep, 0, out, sizeof(out));
	assert_int_equal(n, 18);
	assert_memory_equal(out, "203,0,113,1,195,80", 18);
	/* Zero padding keeps the length where a rewrite must not change it. */
	n = ftp_format_hostport(&ep, 21, out, sizeof(out));
	assert_int_equal(n, 21);
	assert_memory_equal(out, "203,000,113,01,195,80", 21);
	assert_int_equal(ftp_format_hostport(&ep, 40, out, sizeof(out)), -ERANGE);
	assert_int_equal(ftp_format_hostport(&ep, 0, out, 5), -ENOSPC);

	const char *line = "227 Entering Passive Mode (192,0,2,10,195,80).\r\n";
	struct ftp_span span = {27, 17};
	n = ftp_splice(line, strlen(line), span, "203,0,113,1,195,80", 18, out, sizeof(out));
	assert_int_equal(n, (int)strlen(line) + 1);
	assert_memory_equal(out, "227 Entering Passive Mode (203,0,113,1,195,80).\r\n", (size_t)n);
	assert_int_equal(ftp_splice(line, strlen(line), span, "x", 1, out, 10), -ENOSPC);
	struct ftp_span bad = {40, 20};
	assert_int_equal(ftp_splice(line, strlen(line), bad, "x", 1, out, sizeof(out)), -EINVAL);

	struct ftp_endpoint e6 = {.family = AF_INET6, .port = 21};
	inet_pton(AF_INET6, "2001:db8::1", e6.addr);
	n = ftp_format_eprt(&e6, '|', out, sizeof(out));
	assert_int_equal(n, (int)strlen("|2|2001:db8::1|21|"));
	assert_memory_equal(out, "|2|2001:db8::1|21|", (size_t)n);
}

/* parse -> rewrite -> reparse gives the intended values, for many endpoints. */
static void rewrite_roundtrip(void **state)
{
	(void)state;
	srand(7);
	for (int i = 0; i < 20000; i++) {
		struct ftp_endpoint from = {.family = AF_INET, .port = (uint16_t)(1 + rand() % 65535)};
		struct ftp_endpoint to = {.family = AF_INET, .port = (uint16_t)(1 + rand() % 65535)};
		for (int k = 0; k < 4; k++) {
			from.addr[k] = (uint8_t)rand();
			to.addr[k] = (uint8_t)rand();
		}
		char hp[64], line[128], out[160];
		int n = ftp_format_hostport(&from, 0, hp, sizeof(hp));
		int len = snprintf(line, sizeof(line), "227 Entering Passive Mode (%.*s).\r\n", n, hp);
		struct ftp_endpoint got;
		struct ftp_span span;
		assert_int_equal(ftp_parse_227(line, (size_t)len, &got, &span), 0);
		assert_memory_equal(got.addr, from.addr, 4);
		assert_int_equal(got.port, from.port);
		size_t min = (size_t)(rand() % 2 ? span.len : 0);
		n = ftp_format_hostport(&to, min, hp, sizeof(hp));
		if (n < 0)
			continue;
		int m = ftp_splice(line, (size_t)len, span, hp, (size_t)n, out, sizeof(out));
		assert_true(m > 0);
		if (min)
			assert_true(m >= len);
		assert_int_equal(ftp_parse_227(out, (size_t)m, &got, &span), 0);
		assert_memory_equal(got.addr, to.addr, 4);
		assert_int_equal(got.port, to.port);
	}
}

static void telnet_strip(void **state)
{
	char out[64];
	(void)state;
	const char in[] = "\xff\xf4\xff\xf2PO\xff\xfb\x01RT \xff\xff!";
	size_t n = ftp_telnet_strip(in, sizeof(in) - 1, out, sizeof(out));
	assert_int_equal(n, 7);
	assert_memory_equal(out, "PORT \xff!", 7);
	/* A trailing lone IAC and a short output buffer are handled. */
	assert_int_equal(ftp_telnet_strip("AB\xff", 3, out, sizeof(out)), 2);
	assert_int_equal(ftp_telnet_strip("ABCDEF", 6, out, 3), 3);
}

/* A 227/229 rewritten at its own length: the free text before "(" gives or takes the difference. */
static char kept[200];
static const char *keep_len(const char *line, const char *rep)
{
	struct ftp_endpoint ep;
	struct ftp_span span;
	uint16_t port;
	size_t len = strlen(line);
	int r = line[2] == '7' ? ftp_parse_227(line, len, &ep, &span) : ftp_parse_229(line, len, &port, &span);
	assert_int_equal(r, 0);
	int n = ftp_splice_keep_len(line, len, span, rep, strlen(rep), kept, sizeof(kept));
	if (n < 0)
		return n == -ERANGE ? "ERANGE" : "error";
	assert_int_equal(n, (int)len);
	kept[n] = '\0';
	/* What a client reads from it is the new tuple. */
	if (line[2] == '7') {
		assert_int_equal(ftp_parse_227(kept, len, &ep, &span), 0);
		assert_memory_equal(kept + span.off, rep, strlen(rep));
	}
	return kept;
}

static void splice_keep_len(void **state)
{
	(void)state;
	/* Longer (one byte, three), equal, shorter. */
	assert_string_equal(keep_len("227 Entering Passive Mode (192,0,2,10,195,80).\r\n", "203,0,113,1,195,80"),
			    "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	assert_string_equal(keep_len("227 Entering Passive Mode (192,0,2,10,4,1).\r\n", "203,0,113,1,27,88"),
			    "227 Entering Passive M (203,0,113,1,27,88).\r\n");
	assert_string_equal(keep_len("227 Entering Passive Mode (192,0,2,10,195,80).\r\n", "192,0,2,11,195,80"),
			    "227 Entering Passive Mode (192,0,2,11,195,80).\r\n");
	assert_string_equal(keep_len("227 Entering Passive Mode (198,51,100,200,195,80)\r\n", "192,0,2,1,4,0"),
			    "227 Entering Passive Mode         (192,0,2,1,4,0)\r\n");
	/* Without parentheses the text ends at the first digit; its last byte stays. */
	assert_string_equal(keep_len("227 Entering Passive Mode=192,0,2,10,195,80\r\n", "203,0,113,1,195,80"),
			    "227 Entering Passive Mod=203,0,113,1,195,80\r\n");
	/* Text just long enough (its last byte stays), one byte short, none at all. */
	assert_string_equal(keep_len("227 ab (192,0,2,10,195,80)\r\n", "203,0,113,1,195,80"),
			    "227 a (203,0,113,1,195,80)\r\n");
	assert_string_equal(keep_len("227 ab (192,0,2,10,4,1)\r\n", "203,0,113,1,195,80"), "ERANGE");
	assert_string_equal(keep_len("227 (192,0,2,10,195,80)\r\n", "203,0,113,1,195,80"), "ERANGE");
	assert_string_equal(keep_len("227 (192,0,2,10,195,80)\r\n", "10,0,2,10,195,80"), "227  (10,0,2,10,195,80)\r\n");
	/* Text with digits (a client's regex could find numbers in it) or other than printable ASCII is left alone. */
	assert_string_equal(keep_len("227 Mode 1 (192,0,2,10,195,80)\r\n", "203,0,113,1,195,80"), "ERANGE");
	assert_string_equal(keep_len("227 Mode \xff\xff (192,0,2,10,195,80)\r\n", "203,0,113,1,195,80"), "ERANGE");
	assert_string_equal(keep_len("227 Mode\t(192,0,2,10,195,80)\r\n", "203,0,113,1,195,80"), "ERANGE");
	/* 229: the same before "(|||". */
	assert_string_equal(keep_len("229 Entering Extended Passive Mode (|||6446|)\r\n", "60000"),
			    "229 Entering Extended Passive Mod (|||60000|)\r\n");
	assert_string_equal(keep_len("229 Entering Extended Passive Mode (|||60000|)\r\n", "1024"),
			    "229 Entering Extended Passive Mode  (|||1024|)\r\n");
	assert_string_equal(keep_len("229 (|||6446|)\r\n", "60000"), "ERANGE");
	/* Room. */
	struct ftp_span span = {27, 17};
	const char *line = "227 Entering Passive Mode (192,0,2,10,195,80).\r\n";
	assert_int_equal(ftp_splice_keep_len(line, strlen(line), span, "203,0,113,1,195,80", 18, kept, 20), -ENOSPC);
	struct ftp_span bad = {40, 20};
	assert_int_equal(ftp_splice_keep_len(line, strlen(line), bad, "x", 1, kept, sizeof(kept)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(telnet_strip),	 cmocka_unit_test(verbs),
	    cmocka_unit_test(reply_codes),	 cmocka_unit_test(first_commands),
	    cmocka_unit_test(parse_227),	 cmocka_unit_test(parse_229),
	    cmocka_unit_test(parse_port_eprt),	 cmocka_unit_test(format_and_splice),
	    cmocka_unit_test(rewrite_roundtrip), cmocka_unit_test(verb_separators),
	    cmocka_unit_test(http_shapes),	 cmocka_unit_test(splice_keep_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
