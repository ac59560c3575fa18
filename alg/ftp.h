/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Pure FTP control-line parsing and rewriting. Every function works on one
 * line (without its CRLF, or with it: trailing CR/LF are ignored) and does no
 * I/O. Errors are negative errno values.
 */

enum ftp_verb {
	FTP_VERB_OTHER = 0,
	FTP_VERB_PASV,
	FTP_VERB_EPSV,
	FTP_VERB_PORT,
	FTP_VERB_EPRT,
	FTP_VERB_LPRT,
	FTP_VERB_LPSV,
	FTP_VERB_AUTH,
};

struct ftp_endpoint {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
};

/* A byte range inside a line: the part a rewrite replaces. */
struct ftp_span {
	size_t off;
	size_t len;
};

enum ftp_verb ftp_command_verb(const char *buf, size_t len);
const char *ftp_verb_name(enum ftp_verb v);
/* Could this line open an FTP session? (Anything else on a control port is not FTP.) */
bool ftp_plausible_first_command(const char *buf, size_t len);

/*
 * Reply line: three digits then ' ' (final line), '-' (first line of a
 * multi-line reply) or end of line. Returns the code or -EINVAL.
 */
int ftp_reply_code(const char *buf, size_t len, char *sep);

int ftp_parse_227(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span);
int ftp_parse_229(const char *buf, size_t len, uint16_t *port, struct ftp_span *span);
int ftp_parse_port(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span);
int ftp_parse_eprt(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span);

/* "h1,h2,h3,h4,p1,p2", zero-padded so it is at least min_len bytes long. */
int ftp_format_hostport(const struct ftp_endpoint *ep, size_t min_len, char *out, size_t cap);
/* "|1|a.b.c.d|port|" or "|2|v6|port|", using delimiter d. */
int ftp_format_eprt(const struct ftp_endpoint *ep, char d, char *out, size_t cap);
int ftp_format_port(uint16_t port, char *out, size_t cap);

/*
 * Copy buf to out with span replaced by rep. Returns the new length or
 * -ENOSPC; never writes a partial result that it reports as success.
 */
int ftp_splice(const char *buf, size_t len, struct ftp_span span, const char *rep, size_t rep_len, char *out,
	       size_t cap);

/*
 * Copy in without its Telnet commands (RFC 854: IAC x, IAC WILL/WONT/DO/DONT
 * x; IAC IAC is a literal 0xff) into out; returns the bytes written (at most
 * cap). Servers that speak Telnet on the control connection see this.
 */
size_t ftp_telnet_strip(const char *in, size_t len, char *out, size_t cap);
