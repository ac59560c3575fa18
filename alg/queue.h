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
/*
 * A verdict, kept with the others until queue_flush sends them all in one
 * message to the kernel (which applies them in order): a burst of packets
 * costs one system call for its verdicts, not one each.
 */
int queue_verdict(struct queue *q, int dir, uint32_t id, int accept, const uint8_t *data, size_t len);
/* 1 if verdicts were sent, 0 if none were waiting, or -errno. */
int queue_flush(struct queue *q);
