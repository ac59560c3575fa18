/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20

/* An IPv4 or IPv6 TCP packet as the queue delivers it (from the IP header). */
struct pkt_info {
	int family; /* AF_INET or AF_INET6 */
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t flags;
	size_t l4_off;
	size_t payload_off;
	size_t payload_len;
};

/*
 * Returns 0, -EPROTONOSUPPORT for anything but TCP over IPv4/IPv6 without
 * extension headers, -EMSGSIZE for a fragment, -EBADMSG for bad lengths.
 */
int pkt_parse(const uint8_t *p, size_t len, struct pkt_info *pi);

/*
 * Write the packet with its TCP payload replaced to out. Fixes the IP
 * length, the IPv4 header checksum and the TCP checksum, and clears DF on an
 * IPv4 packet that grew. Returns the new length or -ENOSPC / -EMSGSIZE.
 */
int pkt_rebuild(const uint8_t *p, size_t len, const struct pkt_info *pi, const uint8_t *payload, size_t plen,
		uint8_t *out, size_t cap);

/* Whether the TCP checksum (over the pseudo-header, header and payload) is right. */
bool pkt_checksum_ok(const uint8_t *p, size_t len, const struct pkt_info *pi);

uint16_t pkt_checksum(const uint8_t *data, size_t len, uint32_t sum);

/* An MSS option is never clamped below this. */
#define PKT_MSS_FLOOR 256

/*
 * Lower the MSS option of a SYN in place by headroom (not below
 * PKT_MSS_FLOOR) and fix the TCP checksum. Returns 1 if changed, 0 if
 * there is no MSS option or it is already small, -EBADMSG for bad options.
 */
int pkt_clamp_mss(uint8_t *p, size_t len, const struct pkt_info *pi, uint16_t headroom);

/* A TCP segment with data and the URG flag (parsed again: for held copies, not the packet path). */
bool pkt_tcp_urgent(const uint8_t *p, size_t len);
