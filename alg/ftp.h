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
	FTP_VERB_USER,
	FTP_VERB_PASS,
	FTP_VERB_ACCT,
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

/*
 * The verbs ftp-alg acts on, one table per direction, like the kernel FTP
 * helper's search[dir][]: commands the client sends, and replies the server
 * sends with the command each answers. Adding an alias of a known form (an
 * LPRT or LPSV parser) is a row here, not a branch in the session layer.
 */

/* How an address travels in a line: what a rewrite formats. */
enum ftp_form {
	FTP_FORM_NONE = 0,    /* no address */
	FTP_FORM_HOSTPORT,    /* h1,h2,h3,h4,p1,p2 (PORT, 227) */
	FTP_FORM_EXTENDED,    /* <d>af<d>addr<d>port<d> (EPRT) */
	FTP_FORM_PORT,	      /* a port on the address in use (229) */
	FTP_FORM_UNSUPPORTED, /* an address form not understood (LPRT): it must not pass */
};

typedef int (*ftp_parse_fn)(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span);

/* A command of the client's direction. */
struct ftp_command {
	const char *name;
	enum ftp_verb verb;
	enum ftp_form form; /* NONE: passes unchecked; else checked, rewritten or neutralized */
	ftp_parse_fn parse;
	const char *refusal;  /* the reason logged when its argument cannot be read or used, */
	const char *too_long; /* or cannot be rewritten within the length the stream allows */
	const char *event;    /* the name of its rewrite in the log */
};

enum ftp_effect {
	FTP_ANNOUNCES_PORT, /* the server names a port to connect to: rewrite it, arm a pinhole */
	FTP_ACCEPTS_PORT,   /* the server takes the client's port: arm its pinhole */
	FTP_ENCRYPTS,	    /* the connection is encrypted from here */
};

/* A reply of the server's direction, answering one command. */
struct ftp_reply {
	int code;
	enum ftp_verb answers;
	enum ftp_effect effect;
	enum ftp_form form;
	ftp_parse_fn parse;
	const char *malformed;	 /* reasons logged when it cannot be read, */
	const char *other_host;	 /* names another host than the server, */
	const char *below_floor; /* names a port below MinDataPort, */
	const char *too_long;	 /* or cannot be rewritten within the length the stream allows */
	const char *event;
};

/*
 * The command row of this line, or NULL. A verb ends at any byte but a letter
 * or digit (white space of any kind, NUL, punctuation), as servers split it.
 */
const struct ftp_command *ftp_command_find(const char *buf, size_t len);
/*
 * The command a lenient server sees in this line once it has dropped Telnet
 * commands and skipped leading white space, or NULL; *hidden tells that it
 * dropped or skipped something (then the line is not what it looks like).
 */
const struct ftp_command *ftp_command_seen(const char *buf, size_t len, bool *hidden);
/* Could the incomplete line (so far) become a command whose address is checked? */
bool ftp_command_may_carry_address(const char *buf, size_t len);
/* The same, for the command a lenient server sees (ftp_command_seen). */
bool ftp_command_may_be_checked(const char *buf, size_t len);
/*
 * Is this an HTTP request line ("METHOD target HTTP/1.1", "PRI * HTTP/2.0")
 * or a header field ("Name: value")? No FTP client sends either before login.
 */
bool ftp_http_shaped(const char *buf, size_t len);
/* The row of a reply with this code to a command with verb v, or NULL. */
const struct ftp_reply *ftp_reply_find(enum ftp_verb v, int code);
/* The row of the reply to v that announces a port, or NULL. */
const struct ftp_reply *ftp_reply_announcing(enum ftp_verb v);
/* Is code that of a reply announcing a port, whatever it answers? */
bool ftp_code_announces(int code);
/* Could the incomplete line (so far) be a final line of reply r? */
bool ftp_reply_may_be(const struct ftp_reply *r, const char *buf, size_t len);

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
 * ep in form f, at least min_len bytes long where the form allows (zeros),
 * with delimiter d where it has one. -ERANGE if it cannot be that long.
 */
int ftp_format(enum ftp_form f, const struct ftp_endpoint *ep, char d, size_t min_len, char *out, size_t cap);

/*
 * Copy buf to out with span replaced by rep. Returns the new length or
 * -ENOSPC; never writes a partial result that it reports as success.
 */
int ftp_splice(const char *buf, size_t len, struct ftp_span span, const char *rep, size_t rep_len, char *out,
	       size_t cap);

/*
 * A reply (227, 229) copied to out with span replaced by rep and exactly its
 * length kept, so no sequence offset is needed: the free text between the
 * reply code and the tuple's "(" (or its first digit) is trimmed (its last
 * byte stays) or padded with spaces. The code, the "(", the tuple and what
 * follows are kept. Returns len, or -ERANGE when the text is too short or is
 * not plain (printable ASCII without digits, so that no client finds numbers
 * in it), -EINVAL/-ENOSPC for a bad span or room.
 */
int ftp_splice_keep_len(const char *buf, size_t len, struct ftp_span span, const char *rep, size_t rep_len, char *out,
			size_t cap);

/*
 * Copy in without its Telnet commands (RFC 854: IAC x, IAC WILL/WONT/DO/DONT
 * x; IAC IAC is a literal 0xff) into out; returns the bytes written (at most
 * cap). Servers that speak Telnet on the control connection see this.
 */
size_t ftp_telnet_strip(const char *in, size_t len, char *out, size_t cap);

/*
 * Copy buf to out (len bytes, out as large) with every PORT, EPRT and LPRT
 * (any case) at or after from replaced by XXXX; returns how many.
 */
size_t ftp_scrub_verbs(const char *buf, size_t len, size_t from, char *out);
