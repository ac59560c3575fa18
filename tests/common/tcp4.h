/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* An IPv4 TCP packet for tests, as NFQUEUE hands one over: a correct TCP checksum, IP checksum left zero. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t tcp4_build(uint8_t *p, const uint8_t *src, const uint8_t *dst, uint16_t sport, uint16_t dport,
				uint32_t seq, uint8_t flags, const void *payload, size_t plen)
{
	size_t len = 40 + plen;
	memset(p, 0, 40);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = IPPROTO_TCP;
	memcpy(p + 12, src, 4);
	memcpy(p + 16, dst, 4);
	p[20] = (uint8_t)(sport >> 8);
	p[21] = (uint8_t)sport;
	p[22] = (uint8_t)(dport >> 8);
	p[23] = (uint8_t)dport;
	p[24] = (uint8_t)(seq >> 24);
	p[25] = (uint8_t)(seq >> 16);
	p[26] = (uint8_t)(seq >> 8);
	p[27] = (uint8_t)seq;
	p[32] = 0x50;
	p[33] = flags;
	if (plen)
		memcpy(p + 40, payload, plen);
	uint32_t sum = IPPROTO_TCP + (uint32_t)(len - 20);
	for (size_t i = 12; i < 20; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	for (size_t i = 20; i < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | (i + 1 < len ? p[i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	p[36] = (uint8_t)(~sum >> 8);
	p[37] = (uint8_t)~sum;
	return len;
}
