"""The admin also attached the kernel's ftp helper: ftp-alg warns, and the two never both rewrite."""
from lab import expect

GATEWAYS = ("own",)


def with_kernel_helper(t):
    t.lab.helper(True)
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        expect("event=kernel-helper-object table=labhelper object=ftp-standard" in t.log(),
               "no start-up warning about the kernel helper:\n%s", t.log()[-600:])
        t.curl("vsftpd", epsv=False)
        t.curl("vsftpd-short", epsv=False)
        t.ftplib("vsftpd", 10, "both")
    finally:
        t.lab.stop_alg()
        t.lab.helper(False)


def checks(t):
    yield "kernel ftp helper also configured: warned at start, transfers still correct", with_kernel_helper
