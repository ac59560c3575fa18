/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The only file that talks NFQUEUE. Queue base carries original-direction packets, base+1 replies. */
struct queue;

typedef void (*queue_handler)(void *ctx, int dir, uint32_t id, const uint8_t *pkt, size_t len);

int queue_open(struct queue **out, uint16_t base);
void queue_close(struct queue *q);
int queue_fd(const struct queue *q);
/* Read what is waiting and call h for each packet. */
int queue_receive(struct queue *q, queue_handler h, void *ctx);
int queue_verdict(struct queue *q, int dir, uint32_t id, int accept, const uint8_t *data, size_t len);
