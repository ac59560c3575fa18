/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parse -> rewrite -> reparse must give the intended values for any line that
 * parses; a PORT/EPRT that parses is written canonically (what passes
 * untouched means the same to every server); and a line a lenient server
 * reads as PORT/EPRT/LPRT is held from its first byte (every prefix may be
 * checked), so its start is never released before the policy sees it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/ftp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 7)
		return 0;
	/* The first six bytes choose the rewrite target. */
	struct ftp_endpoint to = {.family = AF_INET};
	memcpy(to.addr, data, 4);
	to.port = (uint16_t)(data[4] << 8 | data[5]);
	if (to.port == 0)
		to.port = 1;
	const char *line = (const char *)data + 6;
	size_t len = size - 6;
	struct ftp_endpoint ep;
	struct ftp_span span;
	char rep[64], out[8192];
	uint16_t port;
	char sep;

	(void)ftp_command_verb(line, len);
	(void)ftp_reply_code(line, len, &sep);
	(void)ftp_http_shaped(line, len);
	bool hidden;
	const struct ftp_command *exact = ftp_command_find(line, len);
	const struct ftp_command *seen = ftp_command_seen(line, len, &hidden);
	/* Both readings differ only where Telnet commands were dropped. */
	if (exact && seen != exact && !hidden)
		abort();
	if ((seen && seen->form != FTP_FORM_NONE) || (exact && exact->form != FTP_FORM_NONE)) {
		size_t upto = len < 256 ? len : 256;
		for (size_t k = 1; k <= upto; k++)
			if (!ftp_command_may_be_checked(line, k))
				abort();
		if (!ftp_command_may_be_checked(line, len))
			abort();
	}
	if (ftp_parse_227(line, len, &ep, &span) == 0) {
		if (span.off + span.len > len || ep.port == 0)
			abort();
		int n = ftp_format_hostport(&to, (size_t)(data[0] & 1) ? span.len : 0, rep, sizeof(rep));
		if (n > 0) {
			int m = ftp_splice(line, len, span, rep, (size_t)n, out, sizeof(out));
			if (m > 0) {
				struct ftp_endpoint got;
				struct ftp_span s2;
				if (ftp_parse_227(out, (size_t)m, &got, &s2) != 0 || memcmp(got.addr, to.addr, 4) ||
				    got.port != to.port)
					abort();
			}
		}
	}
	if (ftp_parse_229(line, len, &port, &span) == 0) {
		if (port == 0 || span.off + span.len > len)
			abort();
		int n = ftp_format_port(to.port, rep, sizeof(rep));
		int m = ftp_splice(line, len, span, rep, (size_t)n, out, sizeof(out));
		uint16_t got;
		struct ftp_span s2;
		if (m > 0 && (ftp_parse_229(out, (size_t)m, &got, &s2) != 0 || got != to.port))
			abort();
	}
	if (ftp_parse_port(line, len, &ep, &span) == 0) {
		if (ep.port == 0 || span.off + span.len > len)
			abort();
		int n = ftp_format_hostport(&ep, 0, rep, sizeof(rep));
		if (n < 0 || (size_t)n != span.len || memcmp(rep, line + span.off, span.len) != 0)
			abort();
	}
	if (ftp_parse_eprt(line, len, &ep, &span) == 0) {
		if (ep.port == 0 || span.off + span.len > len)
			abort();
		if (ep.family == AF_INET) {
			int n = ftp_format_eprt(&ep, line[span.off], rep, sizeof(rep));
			if (n < 0 || (size_t)n != span.len || memcmp(rep, line + span.off, span.len) != 0)
				abort();
		}
		int n = ftp_format_eprt(&ep, '|', rep, sizeof(rep));
		if (n > 0) {
			char cmd[128];
			memcpy(cmd, "EPRT ", 5);
			memcpy(cmd + 5, rep, (size_t)n);
			struct ftp_endpoint got;
			if (ftp_parse_eprt(cmd, (size_t)n + 5, &got, &span) != 0 || got.port != ep.port ||
			    memcmp(got.addr, ep.addr, 16))
				abort();
		}
	}
	return 0;
}
