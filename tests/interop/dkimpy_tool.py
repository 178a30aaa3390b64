#!/usr/bin/env python3
"""Drives dkimpy (an implementation nobody on arclist wrote) for the interop tests.

Every DNS question goes to the loopback nameserver the Rust test started (--dns HOST:PORT),
through dnspython: real DNS packets, no injected answers.

  dkimpy_tool.py --dns H:P arc-verify                 < msg   -> JSON {"cv": ..., "detail": ...}
  dkimpy_tool.py --dns H:P arc-seal --key K --domain D --selector S --srv-id ID [--received F] < msg -> msg
  dkimpy_tool.py --dns H:P dkim-sign --key K --domain D --selector S [--simple] < msg -> msg
  dkimpy_tool.py --dns H:P dkim-verify                < msg   -> JSON {"pass": bool}
"""
import argparse
import json
import sys

import dkim
import dns.resolver


def make_dnsfunc(server):
    host, port = server.rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 5

    def dnsfunc(name, timeout=5):
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname.rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return b""
        for rr in answer:
            return b"".join(rr.strings)
        return b""

    return dnsfunc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dns", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("arc-verify")
    seal = sub.add_parser("arc-seal")
    sign = sub.add_parser("dkim-sign")
    for s in (seal, sign):
        s.add_argument("--key", required=True)
        s.add_argument("--domain", required=True)
        s.add_argument("--selector", required=True)
    seal.add_argument("--srv-id", required=True)
    seal.add_argument("--received", help="verify this file (the message as it arrived) instead of stdin")
    seal.add_argument("--results", default="", help="more results to record, e.g. 'dmarc=pass header.from=x'")
    sign.add_argument("--simple", action="store_true")
    sub.add_parser("dkim-verify")
    args = p.parse_args()

    message = sys.stdin.buffer.read()
    dnsfunc = make_dnsfunc(args.dns)

    if args.cmd == "arc-verify":
        cv, results, detail = dkim.arc_verify(message, dnsfunc=dnsfunc)
        # dkimpy answers None instead of fail when a seal says cv=fail.
        print(json.dumps({"cv": cv.decode() if cv else None, "detail": str(detail)}))
    elif args.cmd == "dkim-verify":
        print(json.dumps({"pass": bool(dkim.verify(message, dnsfunc=dnsfunc))}))
    elif args.cmd == "dkim-sign":
        key = open(args.key, "rb").read()
        canon = (b"simple", b"simple") if args.simple else (b"relaxed", b"relaxed")
        sig = dkim.sign(message, args.selector.encode(), args.domain.encode(), key, canonicalize=canon)
        sys.stdout.buffer.write(sig + message)
    elif args.cmd == "arc-seal":
        # A sealer states its own verdict first, as a receiving ADMD would, then seals.
        received = open(args.received, "rb").read() if args.received else message
        cv, _, _ = dkim.arc_verify(received, dnsfunc=dnsfunc)
        cv = cv or b"fail"
        extra = b"".join(b"; " + r.strip().encode() for r in args.results.split(";") if r.strip())
        ar = b"Authentication-Results: " + args.srv_id.encode() + b"; arc=" + cv + extra + b"\r\n"
        message = ar + message
        key = open(args.key, "rb").read()
        new_set = dkim.arc_sign(message, args.selector.encode(), args.domain.encode(), key, args.srv_id.encode())
        if not new_set:
            sys.exit("dkimpy added no ARC set")
        sys.stdout.buffer.write(b"".join(new_set) + message)


if __name__ == "__main__":
    main()
