/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pkt.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int pkt_parse(const uint8_t *p, size_t len, struct pkt_info *pi)
{
	size_t l4, total;

	memset(pi, 0, sizeof(*pi));
	if (len < 1)
		return -EBADMSG;
	unsigned version = p[0] >> 4;
	if (version == 4) {
		if (len < 20)
			return -EBADMSG;
		size_t ihl = (size_t)(p[0] & 0x0f) * 4;
		total = get16(p + 2);
		if (ihl < 20 || total < ihl || total > len)
			return -EBADMSG;
		if ((get16(p + 6) & 0x3fff) != 0)
			return -EMSGSIZE;
		if (p[9] != IPPROTO_TCP)
			return -EPROTONOSUPPORT;
		pi->family = AF_INET;
		memcpy(pi->saddr, p + 12, 4);
		memcpy(pi->daddr, p + 16, 4);
		l4 = ihl;
	} else if (version == 6) {
		if (len < 40)
			return -EBADMSG;
		total = 40 + (size_t)get16(p + 4);
		if (total > len)
			return -EBADMSG;
		if (p[6] != IPPROTO_TCP)
			return -EPROTONOSUPPORT;
		pi->family = AF_INET6;
		memcpy(pi->saddr, p + 8, 16);
		memcpy(pi->daddr, p + 24, 16);
		l4 = 40;
	} else {
		return -EPROTONOSUPPORT;
	}
	if (total - l4 < 20)
		return -EBADMSG;
	size_t doff = (size_t)(p[l4 + 12] >> 4) * 4;
	if (doff < 20 || doff > total - l4)
		return -EBADMSG;
	pi->sport = get16(p + l4);
	pi->dport = get16(p + l4 + 2);
	pi->seq = get32(p + l4 + 4);
	pi->ack = get32(p + l4 + 8);
	pi->flags = p[l4 + 13];
	pi->l4_off = l4;
	pi->payload_off = l4 + doff;
	pi->payload_len = total - l4 - doff;
	return 0;
}

uint16_t pkt_checksum(const uint8_t *data, size_t len, uint32_t sum)
{
	uint64_t s = sum;

	while (len > 1) {
		s += get16(data);
		data += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)data[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t pseudo_sum(const struct pkt_info *pi, size_t l4_len)
{
	uint32_t s = 0;
	size_t alen = pi->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < alen; i += 2) {
		s += get16(pi->saddr + i);
		s += get16(pi->daddr + i);
	}
	s += IPPROTO_TCP;
	s += (uint32_t)(l4_len >> 16);
	s += (uint32_t)(l4_len & 0xffff);
	return s;
}

bool pkt_checksum_ok(const uint8_t *p, size_t len, const struct pkt_info *pi)
{
	size_t end = pi->payload_off + pi->payload_len;

	if (end > len || pi->l4_off > end)
		return false;
	return pkt_checksum(p + pi->l4_off, end - pi->l4_off, pseudo_sum(pi, end - pi->l4_off)) == 0;
}

int pkt_rebuild(const uint8_t *p, size_t len, const struct pkt_info *pi, const uint8_t *payload, size_t plen,
		uint8_t *out, size_t cap)
{
	if (pi->payload_off > len || pi->payload_len > len - pi->payload_off)
		return -EINVAL;
	size_t newlen = pi->payload_off + plen;
	if (newlen > cap)
		return -ENOSPC;
	if (newlen > 65535)
		return -EMSGSIZE;
	memmove(out, p, pi->payload_off);
	memmove(out + pi->payload_off, payload, plen);
	if (pi->family == AF_INET) {
		/* A grown packet may no longer fit the path: let the gateway fragment it rather than drop it. */
		if (newlen > pi->payload_off + pi->payload_len)
			out[6] &= (uint8_t)~0x40;
		put16(out + 2, (uint16_t)newlen);
		put16(out + 10, 0);
		put16(out + 10, pkt_checksum(out, pi->l4_off, 0));
	} else {
		put16(out + 4, (uint16_t)(newlen - 40));
	}
	size_t l4_len = newlen - pi->l4_off;
	/* No urgent data leaves a rebuilt segment (see verdict.c): its bytes stay inline. */
	out[pi->l4_off + 13] &= (uint8_t)~0x20;
	put16(out + pi->l4_off + 18, 0);
	put16(out + pi->l4_off + 16, 0);
	uint16_t c = pkt_checksum(out + pi->l4_off, l4_len, pseudo_sum(pi, l4_len));
	put16(out + pi->l4_off + 16, c);
	return (int)newlen;
}

int pkt_clamp_mss(uint8_t *p, size_t len, const struct pkt_info *pi, uint16_t headroom)
{
	size_t off = pi->l4_off + 20, end = pi->payload_off;

	if (end > len || off > end)
		return -EINVAL;
	while (off < end) {
		uint8_t kind = p[off];
		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		if (end - off < 2 || p[off + 1] < 2 || p[off + 1] > end - off)
			return -EBADMSG;
		if (kind == 2 && p[off + 1] == 4) {
			uint16_t mss = get16(p + off + 2);
			if (mss <= PKT_MSS_FLOOR + headroom)
				return 0;
			put16(p + off + 2, (uint16_t)(mss - headroom));
			size_t l4_len = pi->payload_off + pi->payload_len - pi->l4_off;
			put16(p + pi->l4_off + 16, 0);
			put16(p + pi->l4_off + 16, pkt_checksum(p + pi->l4_off, l4_len, pseudo_sum(pi, l4_len)));
			return 1;
		}
		off += p[off + 1];
	}
	return 0;
}

bool pkt_tcp_urgent(const uint8_t *p, size_t len)
{
	struct pkt_info pi;
	return pkt_parse(p, len, &pi) == 0 && (pi.flags & PKT_TCP_URG) && pi.payload_len > 0;
}
