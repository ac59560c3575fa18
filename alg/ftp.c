/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* White space a lenient server skips before a verb or splits a command on. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Length without trailing CR and LF. */
static size_t trim_eol(const char *buf, size_t len)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	return len;
}

/* The line's first four bytes are name, in any case. */
static bool verb_is(const char *buf, const char *name)
{
	return upper(buf[0]) == name[0] && upper(buf[1]) == name[1] && upper(buf[2]) == name[2] &&
	       upper(buf[3]) == name[3];
}

/*
 * Does a four-letter verb end after the line's first four bytes? Servers
 * split a command on any white space (ProFTPD, Pure-FTPd), a C server stops
 * at a NUL: anything but a letter or digit ends the verb.
 */
static bool verb_ends(const char *buf, size_t len)
{
	return len == 4 || (len > 4 && !is_alnum(buf[4]));
}

size_t ftp_telnet_strip(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o < cap; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c != 0xff) {
			out[o++] = (char)c;
			continue;
		}
		if (i + 1 >= len)
			break;
		unsigned char cmd = (unsigned char)in[i + 1];
		if (cmd == 0xff) {
			out[o++] = (char)0xff;
			i++;
		} else if (cmd >= 0xfb) {
			i += 2; /* WILL, WONT, DO, DONT take an option byte */
		} else {
			i++;
		}
	}
	return o;
}

/* Commands a client may open an FTP session with (RFC 959, 2228, 2389, 2640, 7151 and common ones). */
bool ftp_plausible_first_command(const char *buf, size_t len)
{
	static const char *const first[] = {"USER", "AUTH", "FEAT", "HOST", "OPTS", "SYST", "CLNT", "LANG", "NOOP",
					    "HELP", "QUIT", "PBSZ", "PROT", "SITE", "STAT", "ACCT", "PASS"};
	len = trim_eol(buf, len);
	if (len < 4 || !verb_ends(buf, len))
		return false;
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		if (verb_is(buf, first[i]))
			return true;
	return false;
}

int ftp_reply_code(const char *buf, size_t len, char *sep)
{
	len = trim_eol(buf, len);
	if (len < 3 || !is_digit(buf[0]) || !is_digit(buf[1]) || !is_digit(buf[2]))
		return -EINVAL;
	if (buf[0] < '1' || buf[0] > '5')
		return -EINVAL;
	char s = len > 3 ? buf[3] : ' ';
	if (s != ' ' && s != '-')
		return -EINVAL;
	if (sep)
		*sep = s;
	return (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
}

/*
 * Decimal number of 1..maxdigits digits, value <= max. Advances *pos. With
 * strict, a leading zero is an error: what a client sends must mean the same
 * to every server, and inet_aton reads 010 as 8.
 */
static int parse_num(const char *buf, size_t len, size_t *pos, unsigned maxdigits, unsigned max, bool strict,
		     unsigned *out)
{
	size_t p = *pos;
	unsigned v = 0, n = 0;

	while (p < len && is_digit(buf[p])) {
		if (++n > maxdigits)
			return -ERANGE;
		v = v * 10 + (unsigned)(buf[p] - '0');
		p++;
	}
	if (n == 0)
		return -EINVAL;
	if (strict && n > 1 && buf[*pos] == '0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*pos = p;
	*out = v;
	return 0;
}

/* h1,h2,h3,h4,p1,p2 starting at *pos; the span covers exactly those bytes. */
static int parse_hostport(const char *buf, size_t len, size_t start, bool strict, struct ftp_endpoint *ep,
			  struct ftp_span *span)
{
	size_t p = start;
	unsigned v[6];

	for (int i = 0; i < 6; i++) {
		if (i > 0) {
			if (p >= len || buf[p] != ',')
				return -EINVAL;
			p++;
		}
		int r = parse_num(buf, len, &p, 3, 255, strict, &v[i]);
		if (r < 0)
			return r;
	}
	/* A seventh number or a trailing digit means this is not a host-port. */
	if (p < len && (buf[p] == ',' || is_digit(buf[p])))
		return -EINVAL;
	unsigned port = v[4] * 256 + v[5];
	if (port == 0)
		return -ERANGE;
	memset(ep, 0, sizeof(*ep));
	ep->family = AF_INET;
	for (int i = 0; i < 4; i++)
		ep->addr[i] = (uint8_t)v[i];
	ep->port = (uint16_t)port;
	span->off = start;
	span->len = p - start;
	return 0;
}

int ftp_parse_227(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span)
{
	char sep;

	len = trim_eol(buf, len);
	if (ftp_reply_code(buf, len, &sep) != 227 || sep != ' ' || len <= 4)
		return -EINVAL;
	/* RFC 1123 4.1.2.6: the numbers may come with or without parentheses. */
	size_t p = 4;
	const char *paren = memchr(buf + 4, '(', len - 4);
	if (paren)
		p = (size_t)(paren - buf) + 1;
	else
		while (p < len && !is_digit(buf[p]))
			p++;
	if (p >= len || buf[p - 1] == '-' || buf[p - 1] == '+')
		return -EINVAL;
	/* Replies may be zero-padded (a rewrite that keeps the length pads them). */
	return parse_hostport(buf, len, p, false, ep, span);
}

int ftp_parse_229(const char *buf, size_t len, uint16_t *port, struct ftp_span *span)
{
	char sep;

	len = trim_eol(buf, len);
	if (ftp_reply_code(buf, len, &sep) != 229 || sep != ' ' || len <= 4)
		return -EINVAL;
	const char *paren = memchr(buf + 4, '(', len - 4);
	if (!paren)
		return -EINVAL;
	size_t p = (size_t)(paren - buf) + 1;
	/* RFC 2428: (<d><d><d>port<d>) with one printable delimiter, not a digit. */
	if (len - p < 5)
		return -EINVAL;
	char d = buf[p];
	if (d < 33 || d > 126 || is_digit(d) || buf[p + 1] != d || buf[p + 2] != d)
		return -EINVAL;
	p += 3;
	size_t start = p;
	unsigned v;
	int r = parse_num(buf, len, &p, 5, 65535, false, &v);
	if (r < 0)
		return r;
	if (v == 0)
		return -ERANGE;
	if (p + 1 >= len || buf[p] != d || buf[p + 1] != ')')
		return -EINVAL;
	*port = (uint16_t)v;
	span->off = start;
	span->len = p - start;
	return 0;
}

/* A 229 as an endpoint: the port alone, the address being the one in use. */
static int parse_229_endpoint(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span)
{
	memset(ep, 0, sizeof(*ep));
	return ftp_parse_229(buf, len, &ep->port, span);
}

int ftp_parse_port(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span)
{
	len = trim_eol(buf, len);
	if (ftp_command_verb(buf, len) != FTP_VERB_PORT || len < 6)
		return -EINVAL;
	int r = parse_hostport(buf, len, 5, true, ep, span);
	if (r < 0)
		return r;
	if (span->off + span->len != len)
		return -EINVAL;
	return 0;
}

static int parse_ipv4(const char *s, size_t len, uint8_t out[4])
{
	size_t p = 0;
	unsigned v;

	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (p >= len || s[p] != '.')
				return -EINVAL;
			p++;
		}
		int r = parse_num(s, len, &p, 3, 255, true, &v);
		if (r < 0)
			return r;
		out[i] = (uint8_t)v;
	}
	return p == len ? 0 : -EINVAL;
}

int ftp_parse_eprt(const char *buf, size_t len, struct ftp_endpoint *ep, struct ftp_span *span)
{
	len = trim_eol(buf, len);
	if (ftp_command_verb(buf, len) != FTP_VERB_EPRT || len < 6)
		return -EINVAL;
	size_t p = 5;
	char d = buf[p];
	if (d < 33 || d > 126 || is_digit(d) || d == '.' || d == ':')
		return -EINVAL;
	size_t start = p;
	p++;
	unsigned af;
	int r = parse_num(buf, len, &p, 1, 2, true, &af);
	if (r < 0 || af == 0)
		return -EINVAL;
	if (p >= len || buf[p] != d)
		return -EINVAL;
	p++;
	const char *addr = buf + p;
	const char *end = memchr(addr, d, len - p);
	if (!end)
		return -EINVAL;
	size_t alen = (size_t)(end - addr);
	memset(ep, 0, sizeof(*ep));
	if (af == 1) {
		ep->family = AF_INET;
		if (parse_ipv4(addr, alen, ep->addr) < 0)
			return -EINVAL;
	} else {
		char tmp[INET6_ADDRSTRLEN];
		if (alen == 0 || alen >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, addr, alen);
		tmp[alen] = '\0';
		ep->family = AF_INET6;
		if (inet_pton(AF_INET6, tmp, ep->addr) != 1)
			return -EINVAL;
	}
	p += alen + 1;
	unsigned port;
	r = parse_num(buf, len, &p, 5, 65535, true, &port);
	if (r < 0)
		return r;
	if (port == 0)
		return -ERANGE;
	if (p >= len || buf[p] != d || p + 1 != len)
		return -EINVAL;
	ep->port = (uint16_t)port;
	span->off = start;
	span->len = len - start;
	return 0;
}

static int put_num(char *out, size_t cap, size_t *pos, unsigned v, unsigned width)
{
	char tmp[8];
	unsigned n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < sizeof(tmp));
	while (n < width && n < sizeof(tmp))
		tmp[n++] = '0';
	if (*pos + n > cap)
		return -ENOSPC;
	while (n > 0)
		out[(*pos)++] = tmp[--n];
	return 0;
}

int ftp_format_hostport(const struct ftp_endpoint *ep, size_t min_len, char *out, size_t cap)
{
	unsigned v[6] = {ep->addr[0], ep->addr[1], ep->addr[2], ep->addr[3], ep->port >> 8, ep->port & 0xff};
	unsigned width[6] = {1, 1, 1, 1, 1, 1};
	size_t natural = 5;

	if (ep->family != AF_INET)
		return -EAFNOSUPPORT;
	for (int i = 0; i < 6; i++)
		natural += v[i] >= 100 ? 3 : v[i] >= 10 ? 2 : 1;
	/* Zero-pad numbers when a rewrite must keep the original length. */
	size_t extra = min_len > natural ? min_len - natural : 0;
	for (int i = 0; i < 6 && extra > 0; i++) {
		unsigned digits = v[i] >= 100 ? 3 : v[i] >= 10 ? 2 : 1;
		while (digits < 3 && extra > 0) {
			digits++;
			extra--;
		}
		width[i] = digits;
	}
	if (extra > 0)
		return -ERANGE;
	size_t pos = 0;
	for (int i = 0; i < 6; i++) {
		if (i > 0) {
			if (pos + 1 > cap)
				return -ENOSPC;
			out[pos++] = ',';
		}
		if (put_num(out, cap, &pos, v[i], width[i]) < 0)
			return -ENOSPC;
	}
	return (int)pos;
}

int ftp_format_port(uint16_t port, char *out, size_t cap)
{
	size_t pos = 0;

	if (put_num(out, cap, &pos, port, 1) < 0)
		return -ENOSPC;
	return (int)pos;
}

int ftp_format_eprt(const struct ftp_endpoint *ep, char d, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	size_t pos = 0;

	if (!inet_ntop(ep->family, ep->addr, a, sizeof(a)))
		return -EAFNOSUPPORT;
	size_t alen = strlen(a);
	if (cap < alen + 5)
		return -ENOSPC;
	out[pos++] = d;
	out[pos++] = ep->family == AF_INET ? '1' : '2';
	out[pos++] = d;
	memcpy(out + pos, a, alen);
	pos += alen;
	out[pos++] = d;
	if (put_num(out, cap, &pos, ep->port, 1) < 0 || pos + 1 > cap)
		return -ENOSPC;
	out[pos++] = d;
	return (int)pos;
}

int ftp_format(enum ftp_form f, const struct ftp_endpoint *ep, char d, size_t min_len, char *out, size_t cap)
{
	int n;

	switch (f) {
	case FTP_FORM_HOSTPORT:
		return ftp_format_hostport(ep, min_len, out, cap);
	case FTP_FORM_EXTENDED:
		n = ftp_format_eprt(ep, d, out, cap);
		return n > 0 && (size_t)n < min_len ? -ERANGE : n;
	case FTP_FORM_PORT:
		n = ftp_format_port(ep->port, out, cap);
		if (n > 0 && (size_t)n < min_len) {
			/* Keep the length with leading zeros; RFC 2428 ports are decimal. */
			if (min_len > cap)
				return -ENOSPC;
			memmove(out + (min_len - (size_t)n), out, (size_t)n);
			memset(out, '0', min_len - (size_t)n);
			n = (int)min_len;
		}
		return n;
	default:
		return -EINVAL;
	}
}

int ftp_splice(const char *buf, size_t len, struct ftp_span span, const char *rep, size_t rep_len, char *out,
	       size_t cap)
{
	if (span.off > len || span.len > len - span.off)
		return -EINVAL;
	size_t tail = len - span.off - span.len;
	if (span.off > cap || rep_len > cap - span.off || tail > cap - span.off - rep_len)
		return -ENOSPC;
	memmove(out, buf, span.off);
	memcpy(out + span.off, rep, rep_len);
	memmove(out + span.off + rep_len, buf + span.off + span.len, tail);
	return (int)(span.off + rep_len + tail);
}

int ftp_splice_keep_len(const char *buf, size_t len, struct ftp_span span, const char *rep, size_t rep_len, char *out,
			size_t cap)
{
	const size_t t0 = 4; /* after "227 " */
	if (span.off < t0 || span.off > len || span.len > len - span.off)
		return -EINVAL;
	if (len > cap)
		return -ENOSPC;
	const char *paren = memchr(buf + t0, '(', span.off - t0);
	size_t t1 = paren ? (size_t)(paren - buf) : span.off, tlen = t1 - t0;
	for (size_t i = t0; i < t1; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e || is_digit(buf[i]))
			return -ERANGE;
	size_t keep = tlen, pad = 0;
	if (rep_len > span.len) {
		size_t cut = rep_len - span.len;
		if (tlen == 0 || cut > tlen - 1)
			return -ERANGE;
		keep = tlen - 1 - cut;
	} else {
		pad = span.len - rep_len;
	}
	size_t pos = t0 + keep;
	memmove(out, buf, pos);
	if (keep < tlen)
		out[pos++] = buf[t1 - 1]; /* the byte before the tuple, usually a space */
	memset(out + pos, ' ', pad);
	pos += pad;
	memmove(out + pos, buf + t1, span.off - t1);
	pos += span.off - t1;
	memcpy(out + pos, rep, rep_len);
	pos += rep_len;
	size_t tail = len - span.off - span.len;
	memmove(out + pos, buf + span.off + span.len, tail);
	return (int)(pos + tail);
}

static const struct ftp_command commands[] = {
    {.name = "PASV", .verb = FTP_VERB_PASV},
    {.name = "EPSV", .verb = FTP_VERB_EPSV},
    {.name = "PORT",
     .verb = FTP_VERB_PORT,
     .form = FTP_FORM_HOSTPORT,
     .parse = ftp_parse_port,
     .refusal = "malformed-PORT",
     .too_long = "PORT-cannot-keep-length",
     .event = "port"},
    {.name = "EPRT",
     .verb = FTP_VERB_EPRT,
     .form = FTP_FORM_EXTENDED,
     .parse = ftp_parse_eprt,
     .refusal = "malformed-EPRT",
     .too_long = "PORT-cannot-keep-length",
     .event = "eprt"},
    /* RFC 1639 is not understood: an LPRT opens nothing and must not bounce either. */
    {.name = "LPRT", .verb = FTP_VERB_LPRT, .form = FTP_FORM_UNSUPPORTED, .refusal = "LPRT-not-supported"},
    {.name = "LPSV", .verb = FTP_VERB_LPSV},
    {.name = "AUTH", .verb = FTP_VERB_AUTH},
    /* Their replies end the login, from when an HTTP-shaped line is taken for FTP. */
    {.name = "USER", .verb = FTP_VERB_USER},
    {.name = "PASS", .verb = FTP_VERB_PASS},
    {.name = "ACCT", .verb = FTP_VERB_ACCT},
};

static const struct ftp_reply replies[] = {
    {.code = 227,
     .answers = FTP_VERB_PASV,
     .effect = FTP_ANNOUNCES_PORT,
     .form = FTP_FORM_HOSTPORT,
     .parse = ftp_parse_227,
     .malformed = "malformed-227",
     .other_host = "227-names-other-host",
     .below_floor = "227-port-below-floor",
     .too_long = "227-cannot-keep-length",
     .event = "pasv"},
    {.code = 229,
     .answers = FTP_VERB_EPSV,
     .effect = FTP_ANNOUNCES_PORT,
     .form = FTP_FORM_PORT,
     .parse = parse_229_endpoint,
     .malformed = "malformed-229",
     .below_floor = "229-port-below-floor",
     .too_long = "229-cannot-keep-length",
     .event = "epsv"},
    {.code = 200, .answers = FTP_VERB_PORT, .effect = FTP_ACCEPTS_PORT},
    {.code = 200, .answers = FTP_VERB_EPRT, .effect = FTP_ACCEPTS_PORT},
    {.code = 234, .answers = FTP_VERB_AUTH, .effect = FTP_ENCRYPTS},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
#define NREPLIES  (sizeof(replies) / sizeof(replies[0]))

const struct ftp_command *ftp_command_find(const char *buf, size_t len)
{
	len = trim_eol(buf, len);
	if (len < 4 || !verb_ends(buf, len))
		return NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (verb_is(buf, commands[i].name))
			return &commands[i];
	return NULL;
}

enum ftp_verb ftp_command_verb(const char *buf, size_t len)
{
	const struct ftp_command *c = ftp_command_find(buf, len);
	return c ? c->verb : FTP_VERB_OTHER;
}

const char *ftp_verb_name(enum ftp_verb v)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].verb == v)
			return commands[i].name;
	return "other";
}

/*
 * The first bytes a lenient server reads as the command: without Telnet
 * commands (ProFTPD drops them) and leading white space (ProFTPD skips it).
 * *hidden: something was dropped.
 */
static size_t seen_prefix(const char *buf, size_t len, char *out, size_t cap, bool *hidden)
{
	size_t o = 0;

	*hidden = false;
	len = trim_eol(buf, len);
	for (size_t i = 0; i < len && o < cap; i++) {
		char c = buf[i];
		if ((unsigned char)c == 0xff) {
			*hidden = true;
			if (i + 1 >= len)
				break;
			unsigned char cmd = (unsigned char)buf[i + 1];
			if (cmd != 0xff) {
				i += cmd >= 0xfb ? 2 : 1; /* WILL, WONT, DO, DONT take an option byte */
				continue;
			}
			i++;
		} else if (o == 0 && is_space(c)) {
			*hidden = true;
			continue;
		}
		out[o++] = c;
	}
	return o;
}

const struct ftp_command *ftp_command_seen(const char *buf, size_t len, bool *hidden)
{
	char seen[8];
	size_t n = seen_prefix(buf, len, seen, sizeof(seen), hidden);
	return ftp_command_find(seen, n);
}

bool ftp_command_may_be_checked(const char *buf, size_t len)
{
	char seen[4];
	bool hidden;
	return ftp_command_may_carry_address(buf, len) ||
	       ftp_command_may_carry_address(seen, seen_prefix(buf, len, seen, sizeof(seen), &hidden));
}

/* RFC 9110 tchar: what a method or a header name is made of. */
static bool is_tchar(char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

bool ftp_http_shaped(const char *buf, size_t len)
{
	size_t t = 0;

	len = trim_eol(buf, len);
	while (t < len && is_tchar(buf[t]))
		t++;
	if (t == 0 || t == len)
		return false;
	/* A header field, "Name: value". */
	if (buf[t] == ':')
		return true;
	/* A request line, "METHOD target HTTP/d.d" (PRI * HTTP/2.0 too). */
	static const char version[] = " HTTP/";
	size_t vl = sizeof(version) - 1;
	if (buf[t] != ' ' || len < t + 2 + vl + 3)
		return false;
	const char *v = buf + len - (vl + 3);
	if (memcmp(v, version, vl) != 0 && !(memcmp(v, " http/", vl) == 0))
		return false;
	return is_digit(v[vl]) && v[vl + 1] == '.' && is_digit(v[vl + 2]);
}

bool ftp_command_may_carry_address(const char *buf, size_t len)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (commands[i].form == FTP_FORM_NONE)
			continue;
		size_t k = 0;
		while (k < len && k < 4 && upper(buf[k]) == commands[i].name[k])
			k++;
		if (k == len || k == 4)
			return true;
	}
	return false;
}

const struct ftp_reply *ftp_reply_find(enum ftp_verb v, int code)
{
	for (size_t i = 0; i < NREPLIES; i++)
		if (replies[i].answers == v && replies[i].code == code)
			return &replies[i];
	return NULL;
}

const struct ftp_reply *ftp_reply_announcing(enum ftp_verb v)
{
	for (size_t i = 0; i < NREPLIES; i++)
		if (replies[i].answers == v && replies[i].effect == FTP_ANNOUNCES_PORT)
			return &replies[i];
	return NULL;
}

bool ftp_code_announces(int code)
{
	for (size_t i = 0; i < NREPLIES; i++)
		if (replies[i].code == code && replies[i].effect == FTP_ANNOUNCES_PORT)
			return true;
	return false;
}

bool ftp_reply_may_be(const struct ftp_reply *r, const char *buf, size_t len)
{
	const char want[4] = {(char)('0' + r->code / 100), (char)('0' + r->code / 10 % 10), (char)('0' + r->code % 10),
			      ' '};
	return memcmp(buf, want, len < 4 ? len : 4) == 0;
}

size_t ftp_scrub_verbs(const char *buf, size_t len, size_t from, char *out)
{
	static const char verbs[][5] = {"PORT", "EPRT", "LPRT"};
	size_t n = 0;
	memcpy(out, buf, len);
	for (size_t i = from; i + 4 <= len; i++)
		for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
			if (upper(out[i]) == verbs[v][0] && upper(out[i + 1]) == verbs[v][1] &&
			    upper(out[i + 2]) == verbs[v][2] && upper(out[i + 3]) == verbs[v][3]) {
				memcpy(out + i, "XXXX", 4);
				n++;
				break;
			}
	return n;
}
