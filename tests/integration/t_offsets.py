"""Length-changing rewrites end to end: KeepReplyLength = no, so every 227 changes length.

Real servers' 227s carry free text, which the default rewrite trims or pads
to keep each line's length; these checks turn that off, so the kernel's
sequence adjustment carries every later byte, under loss and across a
kill -9 and restart (longer and shorter public addresses: both signs).
"""
import os

import t_loss
import t_restart

GATEWAYS = ("own",)


def config(t):
    path = os.path.join(t.lab.work, "offsets.conf")
    with open(path, "w") as f:
        f.write("KeepReplyLength = no\n")
    return ["--config", path]


def under_loss(t):
    t.lab.start_alg(t.binary, config(t))
    try:
        t_loss.many_rewrites(t, False, True, keep=False)
        t_loss.many_rewrites(t, True, False, keep=False)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield ("30 PASV under random loss, then 30 pipelined, every 227 one byte longer: all rewritten, "
           "then a transfer"), under_loss
    yield ("kill -9 and restart with length-changing rewrites (both signs): live sessions keep working"), \
        lambda t: t_restart.restart_keeps_sessions(t, config(t))
