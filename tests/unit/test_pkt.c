/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/pkt.h"

static size_t make_v4(uint8_t *p, const char *payload)
{
	size_t plen = strlen(payload), len = 20 + 20 + plen;
	memset(p, 0, 40);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[6] = 0x40; /* DF */
	p[8] = 64;
	p[9] = IPPROTO_TCP;
	memcpy(p + 12, (uint8_t[]){192, 0, 2, 10}, 4);
	memcpy(p + 16, (uint8_t[]){203, 0, 113, 10}, 4);
	p[20] = 0;
	p[21] = 21;
	p[22] = 0xc3;
	p[23] = 0x50;
	memcpy(p + 24, (uint8_t[]){1, 2, 3, 4}, 4);
	memcpy(p + 28, (uint8_t[]){5, 6, 7, 8}, 4);
	p[32] = 0x50;
	p[33] = PKT_TCP_ACK | 0x08;
	memcpy(p + 40, payload, plen);
	return len;
}

static void verify_checksums(const uint8_t *p, size_t len)
{
	struct pkt_info pi;
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	if (pi.family == AF_INET)
		assert_int_equal(pkt_checksum(p, 20, 0), 0);
	/* Sum over pseudo-header and segment including the checksum is zero. */
	uint32_t s = 0;
	size_t alen = pi.family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < alen; i += 2)
		s += (uint32_t)(pi.saddr[i] << 8 | pi.saddr[i + 1]) + (uint32_t)(pi.daddr[i] << 8 | pi.daddr[i + 1]);
	size_t l4 = len - pi.l4_off;
	s += IPPROTO_TCP + (uint32_t)l4;
	assert_int_equal(pkt_checksum(p + pi.l4_off, l4, s), 0);
}

static void checksum_ok_detects_corruption(void **state)
{
	uint8_t p[256];
	struct pkt_info pi;
	(void)state;
	size_t len = make_v4(p, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	uint8_t out[256];
	int n = pkt_rebuild(p, len, &pi, p + 40, pi.payload_len, out, sizeof(out));
	assert_int_equal(n, (int)len);
	assert_true(pkt_checksum_ok(out, len, &pi));
	out[60] ^= 0x01;
	assert_false(pkt_checksum_ok(out, len, &pi));
	out[60] ^= 0x01;
	out[37] ^= 0x80;
	assert_false(pkt_checksum_ok(out, len, &pi));
	/* Lengths that do not fit the buffer are never read. */
	pi.payload_len = 1000;
	assert_false(pkt_checksum_ok(out, len, &pi));
}

static void grown_v4_clears_df(void **state)
{
	uint8_t p[256], out[256];
	struct pkt_info pi;
	(void)state;
	size_t len = make_v4(p, "227 (192,0,2,10,195,80)\r\n");
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	const char *same = "227 (192,0,2,99,195,80)\r\n", *longer = "227 (203,0,113,10,195,80)\r\n";
	assert_int_equal(pkt_rebuild(p, len, &pi, (const uint8_t *)same, strlen(same), out, sizeof(out)), (int)len);
	assert_int_equal(out[6] & 0x40, 0x40);
	int n = pkt_rebuild(p, len, &pi, (const uint8_t *)longer, strlen(longer), out, sizeof(out));
	assert_int_equal(out[6] & 0x40, 0);
	verify_checksums(out, (size_t)n);
}

static size_t make_syn(uint8_t *p, const uint8_t *opts, size_t olen)
{
	size_t len = make_v4(p, "");
	memcpy(p + 40, opts, olen);
	len += olen;
	p[3] = (uint8_t)len;
	p[32] = (uint8_t)((20 + olen) / 4 << 4);
	p[33] = PKT_TCP_SYN;
	p[10] = p[11] = 0;
	uint16_t c = pkt_checksum(p, 20, 0);
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	return len;
}

static void mss_clamped(void **state)
{
	uint8_t p[256];
	struct pkt_info pi;
	(void)state;
	const uint8_t opts[] = {1, 1, 4, 2, 2, 4, 0x05, 0xb4, 1, 3, 3, 7}; /* NOP NOP SACK-perm MSS 1460 NOP WS */
	size_t len = make_syn(p, opts, sizeof(opts));
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	assert_int_equal(pi.payload_len, 0);
	assert_int_equal(pkt_clamp_mss(p, len, &pi, 64), 1);
	assert_int_equal(p[46] << 8 | p[47], 1396);
	verify_checksums(p, len);
	/* Never below the floor. */
	p[46] = 0x01;
	p[47] = 0x2c; /* 300 */
	assert_int_equal(pkt_clamp_mss(p, len, &pi, 64), 0);
	assert_int_equal(p[46] << 8 | p[47], 300);
	/* An option length running past the header is refused, nothing written. */
	const uint8_t bad[] = {1, 1, 8, 40, 2, 4, 0x05, 0xb4};
	len = make_syn(p, bad, sizeof(bad));
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	assert_int_equal(pkt_clamp_mss(p, len, &pi, 64), -EBADMSG);
	assert_int_equal(p[46] << 8 | p[47], 0x05b4);
	const uint8_t none[] = {1, 1, 1, 0};
	len = make_syn(p, none, sizeof(none));
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	assert_int_equal(pkt_clamp_mss(p, len, &pi, 64), 0);
}

static void parse_v4(void **state)
{
	uint8_t p[256];
	struct pkt_info pi;
	(void)state;
	size_t len = make_v4(p, "227 x\r\n");
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	assert_int_equal(pi.family, AF_INET);
	assert_int_equal(pi.sport, 21);
	assert_int_equal(pi.dport, 50000);
	assert_int_equal(pi.seq, 0x01020304);
	assert_int_equal(pi.payload_off, 40);
	assert_int_equal(pi.payload_len, 7);
	/* Trailing link-layer padding is not payload. */
	assert_int_equal(pkt_parse(p, len + 6, &pi), 0);
	assert_int_equal(pi.payload_len, 7);
}

static void rebuild_v4_both_signs(void **state)
{
	uint8_t p[256], out[256];
	struct pkt_info pi;
	(void)state;
	size_t len = make_v4(p, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_int_equal(pkt_parse(p, len, &pi), 0);
	const char *longer = "227 Entering Passive Mode (203,0,113,1,195,80).\r\n";
	int n = pkt_rebuild(p, len, &pi, (const uint8_t *)longer, strlen(longer), out, sizeof(out));
	assert_int_equal(n, (int)(len + 1));
	verify_checksums(out, (size_t)n);
	assert_memory_equal(out + 40, longer, strlen(longer));
	const char *shorter = "227 x\r\n";
	n = pkt_rebuild(p, len, &pi, (const uint8_t *)shorter, strlen(shorter), out, sizeof(out));
	assert_int_equal(n, 47);
	verify_checksums(out, (size_t)n);
	assert_int_equal(pkt_rebuild(p, len, &pi, (const uint8_t *)longer, strlen(longer), out, 20), -ENOSPC);
}

static void rebuild_v6(void **state)
{
	uint8_t p[256] = {0}, out[256];
	struct pkt_info pi;
	(void)state;
	const char *pl = "229 Entering Extended Passive Mode (|||6446|)\r\n";
	size_t plen = strlen(pl);
	p[0] = 0x60;
	p[4] = (uint8_t)((20 + plen) >> 8);
	p[5] = (uint8_t)(20 + plen);
	p[6] = IPPROTO_TCP;
	p[7] = 64;
	p[8] = 0x20;
	p[9] = 0x01;
	p[10] = 0x0d;
	p[11] = 0xb8;
	p[23] = 1;
	memcpy(p + 24, p + 8, 16);
	p[39] = 2;
	p[40 + 12] = 0x50;
	memcpy(p + 60, pl, plen);
	assert_int_equal(pkt_parse(p, 60 + plen, &pi), 0);
	assert_int_equal(pi.family, AF_INET6);
	int n = pkt_rebuild(p, 60 + plen, &pi, (const uint8_t *)"229 (|||1|)\r\n", 13, out, sizeof(out));
	assert_int_equal(n, 73);
	verify_checksums(out, (size_t)n);
}

static void malformed(void **state)
{
	uint8_t p[256];
	struct pkt_info pi;
	(void)state;
	size_t len = make_v4(p, "x");
	assert_int_equal(pkt_parse(p, 10, &pi), -EBADMSG);
	assert_int_equal(pkt_parse(p, 0, &pi), -EBADMSG);
	p[0] = 0x44; /* IHL below 20 bytes */
	assert_int_equal(pkt_parse(p, len, &pi), -EBADMSG);
	make_v4(p, "x");
	p[3] = (uint8_t)(len + 10); /* total length beyond the buffer */
	assert_int_equal(pkt_parse(p, len, &pi), -EBADMSG);
	make_v4(p, "x");
	p[6] = 0x20; /* more fragments */
	assert_int_equal(pkt_parse(p, len, &pi), -EMSGSIZE);
	make_v4(p, "x");
	p[9] = IPPROTO_UDP;
	assert_int_equal(pkt_parse(p, len, &pi), -EPROTONOSUPPORT);
	make_v4(p, "x");
	p[32] = 0xf0; /* data offset past the end */
	assert_int_equal(pkt_parse(p, len, &pi), -EBADMSG);
	p[0] = 0x75;
	assert_int_equal(pkt_parse(p, len, &pi), -EPROTONOSUPPORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_v4),
	    cmocka_unit_test(checksum_ok_detects_corruption),
	    cmocka_unit_test(grown_v4_clears_df),
	    cmocka_unit_test(mss_clamped),
	    cmocka_unit_test(rebuild_v4_both_signs),
	    cmocka_unit_test(rebuild_v6),
	    cmocka_unit_test(malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
