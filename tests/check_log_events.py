#!/usr/bin/env python3
"""The LOGS section of ftp-alg(8) lists every event the daemon logs, and none it does not."""
import glob
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
code = set()
for path in glob.glob(os.path.join(root, "alg", "*.c")) + glob.glob(os.path.join(root, "nft", "*.c")) + \
        glob.glob(os.path.join(root, "conf", "*.c")):
    with open(path) as f:
        text = f.read()
    code |= set(re.findall(r"event=([a-z0-9-]+)", text))
    # The verb tables name the events their rewrites log as event=%s.
    code |= set(re.findall(r'\.event = "([a-z0-9-]+)"', text))

with open(os.path.join(root, "docs", "ftp-alg.8")) as f:
    man = f.read()
m = re.search(r"^\.SH LOGS\n(.*?)^\.SH ", man, re.S | re.M)
if not m:
    sys.exit("ftp-alg.8 has no LOGS section")
documented = set(e.replace("\\-", "-") for e in re.findall(r"^\.B event=([a-z0-9\\-]+)", m.group(1), re.M))

bad = False
for e in sorted(code - documented):
    print("logged but not in ftp-alg(8) LOGS: event=%s" % e)
    bad = True
for e in sorted(documented - code):
    print("in ftp-alg(8) LOGS but never logged: event=%s" % e)
    bad = True
if not bad:
    print("%d events, all documented" % len(code))
sys.exit(1 if bad else 0)
