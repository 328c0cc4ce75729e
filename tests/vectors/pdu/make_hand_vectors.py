#!/usr/bin/env python3
"""Writes the hand-built PDU vectors (hand_*.hex) in this folder.

The bytes are assembled here from the PS3.8 / PS3.7 tables (item by item,
lengths computed by this script), independently of src/ul/pdu.c, so that
pdu_test.c can check the C encoder and decoder against them both ways.
Each file is annotated: one item or field per line, '#' starts a comment.
Run it from anywhere; it rewrites the files next to itself.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
MWL_FIND = "1.2.840.10008.5.1.4.31"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
LEGACY_CT = "1.2.840.10008.5.1.4.1.1.2.2"
STORAGE_SERVICE = "1.2.840.10008.4.2"
IMPL_UID = "1.2.3.999.1.1"  # a made-up implementation class UID
IMPL_VERSION = "MWL_0.1.0"


class Out:
    """Bytes plus one annotated line per field."""

    def __init__(self):
        self.data = b""
        self.lines = []

    def add(self, data, comment, depth=0):
        self.data += data
        self.lines.append((data, "  " * depth + comment))


def item(t, value, reserved=0):
    return struct.pack(">BBH", t, reserved, len(value)) + value


def u16(v):
    return struct.pack(">H", v)


def uid_field(uid):
    return u16(len(uid)) + uid.encode()


def write(name, title, out):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("# " + title + "\n")
        f.write("# Hand-built from PS3.8 / PS3.7 tables by make_hand_vectors.py.\n")
        for data, comment in out.lines:
            hexs = " ".join("%02x" % b for b in data)
            if len(data) <= 16:
                f.write("%-48s # %s\n" % (hexs, comment))
            else:
                f.write("# %s\n" % comment)
                for i in range(0, len(data), 16):
                    f.write(" ".join("%02x" % b for b in data[i:i + 16]) + "\n")


def pdu(t, body_out, title, name):
    out = Out()
    out.add(struct.pack(">BBI", t, 0, len(body_out.data)), "PDU type %02XH, reserved, PDU-length %d" % (t, len(body_out.data)))
    out.lines += body_out.lines
    out.data += body_out.data
    write(name, title, out)
    return out.data


def ae(title, raw=None):
    b = raw if raw is not None else title.encode().ljust(16, b" ")
    assert len(b) == 16
    return b


def user_info_rq(body, impl_uid=IMPL_UID, extra=()):
    """User information item with every RQ sub-item (51H-58H)."""
    subs = []
    subs.append((item(0x51, struct.pack(">I", 16384)), "51H maximum length 16384"))
    subs.append((item(0x52, impl_uid.encode()), "52H implementation class UID %r" % impl_uid))
    subs.append((item(0x53, u16(5) + u16(3)), "53H async window: invoked 5, performed 3"))
    subs.append((item(0x54, uid_field(MWL_FIND) + bytes([1, 0])), "54H role selection MWL FIND: SCU 1, SCP 0"))
    subs.append((item(0x55, IMPL_VERSION.encode()), "55H implementation version name %r" % IMPL_VERSION))
    subs.append((item(0x56, uid_field(MWL_FIND) + bytes([1, 1, 1, 1])), "56H ext. negotiation MWL FIND, info 01 01 01 01 (PS3.4 K.5.1)"))
    related = uid_field(ENHANCED_CT) + uid_field(LEGACY_CT)
    subs.append((item(0x57, uid_field(CT_IMAGE) + uid_field(STORAGE_SERVICE) + u16(len(related)) + related),
                 "57H common ext. negotiation CT Image, Storage service class, 2 related SOP classes"))
    ident = bytes([2, 1]) + u16(5) + b"alice" + u16(6) + b"secret"
    subs.append((item(0x58, ident), "58H user identity: type 2, positive response requested, 'alice' / 'secret'"))
    for pos, data, comment in extra:
        subs.insert(pos, (data, comment))
    value = b"".join(d for d, _ in subs)
    body.add(struct.pack(">BBH", 0x50, 0, len(value)), "50H user information item, length %d" % len(value))
    for d, c in subs:
        body.add(d, c, 1)


def associate_rq_full():
    body = Out()
    body.add(u16(1) + u16(0), "protocol version 0001H, reserved")
    body.add(ae("MWL_SCP"), "called AE 'MWL_SCP'")
    body.add(ae("MODALITY 1"), "calling AE 'MODALITY 1' (embedded space is significant)")
    body.add(bytes(32), "reserved, bytes 43-74")
    body.add(item(0x10, APP_CONTEXT.encode()), "10H application context")
    pc1 = bytes([1, 0, 0, 0]) + item(0x30, VERIFICATION.encode()) + item(0x40, IMPLICIT_LE.encode())
    body.add(item(0x20, pc1), "20H context 1: Verification, implicit VR LE")
    pc3 = (bytes([3, 0, 0, 0]) + item(0x30, MWL_FIND.encode()) + item(0x40, EXPLICIT_LE.encode()) +
           item(0x40, DEFLATED_LE.encode()) + item(0x40, IMPLICIT_LE.encode()))
    body.add(item(0x20, pc3), "20H context 3: MWL FIND, explicit LE, deflated explicit LE, implicit LE")
    user_info_rq(body)
    return pdu(0x01, body, "A-ASSOCIATE-RQ with every RQ item and sub-item (10H, 20H/30H/40H, 50H, 51H-58H).",
               "hand_associate_rq_full.hex")


def associate_rq_unknown_items():
    """Same content as the full RQ once decoded, but with unrecognized items
    and sub-items to skip, padded UIDs to strip and a leading-space AE."""
    body = Out()
    body.add(u16(1) + u16(0xFFFF), "protocol version 0001H, reserved FFFFH (not tested)")
    body.add(ae(None, b"  MWL_SCP       "), "called AE '  MWL_SCP' (leading spaces are not significant)")
    body.add(ae(None, b"MODALITY 1\0\0\0\0\0\0"), "calling AE 'MODALITY 1' padded with NULs")
    body.add(bytes(range(32)), "reserved bytes 43-74, not zero (not tested)")
    body.add(item(0x10, APP_CONTEXT.encode() + b"\0"), "10H application context, padded with a NUL")
    pc1 = (bytes([1, 0xFF, 0xFF, 0xFF]) + item(0x30, VERIFICATION.encode()) + item(0x3F, b"skip") +
           item(0x40, IMPLICIT_LE.encode() + b" "))
    body.add(item(0x20, pc1), "20H context 1, reserved bytes FFH, unknown sub-item 3FH, TS padded with a space")
    body.add(item(0x60, b"unknown"), "unknown item 60H: skipped (PS3.8 9.3.1)")
    pc3 = (bytes([3, 0, 0, 0]) + item(0x40, EXPLICIT_LE.encode()) + item(0x30, MWL_FIND.encode()) +
           item(0x40, DEFLATED_LE.encode()) + item(0x40, IMPLICIT_LE.encode()))
    body.add(item(0x20, pc3), "20H context 3, abstract syntax after the first transfer syntax")
    user_info_rq(body, impl_uid=IMPL_UID, extra=[
        (0, item(0x5F, b"xyz"), "unknown sub-item 5FH: skipped (PS3.8 D.2)"),
        (9, item(0xA0, b""), "unknown empty sub-item A0H: skipped"),
    ])
    body.add(item(0x7F, b""), "unknown empty item 7FH after the user information: skipped")
    return pdu(0x01, body, "A-ASSOCIATE-RQ that decodes like hand_associate_rq_full.hex: unknown items, padding, order.",
               "hand_associate_rq_unknown_items.hex")


def associate_ac_full(rq):
    body = Out()
    body.add(u16(1) + u16(0), "protocol version 0001H, reserved")
    body.add(rq[10:74], "bytes 11-74 of hand_associate_rq_full.hex, echoed")
    body.add(item(0x10, APP_CONTEXT.encode()), "10H application context")
    body.add(item(0x21, bytes([1, 0, 0, 0]) + item(0x40, IMPLICIT_LE.encode())), "21H context 1: acceptance, implicit VR LE")
    body.add(item(0x21, bytes([3, 0, 4, 0]) + item(0x40, b"")), "21H context 3: transfer-syntaxes-not-supported, empty 40H")
    body.add(item(0x21, bytes([5, 0, 3, 0]) + item(0x40, EXPLICIT_BE.encode())), "21H context 5: abstract-syntax-not-supported (TS not significant)")
    subs = [
        (item(0x51, struct.pack(">I", 32768)), "51H maximum length 32768"),
        (item(0x52, IMPL_UID.encode()), "52H implementation class UID"),
        (item(0x53, u16(1) + u16(1)), "53H async window 1/1"),
        (item(0x54, uid_field(MWL_FIND) + bytes([1, 0])), "54H role selection MWL FIND: SCU accepted, SCP not"),
        (item(0x55, IMPL_VERSION.encode()), "55H implementation version name"),
        (item(0x56, uid_field(MWL_FIND) + bytes([1, 1, 0])), "56H ext. negotiation MWL FIND, info 01 01 00"),
        (item(0x59, u16(4) + b"tckt"), "59H user identity server response 'tckt'"),
    ]
    value = b"".join(d for d, _ in subs)
    body.add(struct.pack(">BBH", 0x50, 0, len(value)), "50H user information item, length %d" % len(value))
    for d, c in subs:
        body.add(d, c, 1)
    return pdu(0x02, body, "A-ASSOCIATE-AC with accepted and rejected contexts and every AC sub-item (51H-56H, 59H).",
               "hand_associate_ac_full.hex")


def fixed(t, four, title, name):
    body = Out()
    body.add(bytes(four), "fields, bytes 7-10")
    pdu(t, body, title, name)


def p_data_multi():
    body = Out()
    cmd = bytes(range(0x10, 0x18))
    body.add(struct.pack(">I", 2 + len(cmd)) + bytes([1, 0x03]) + cmd, "PDV: length 10, context 1, command + last, 8 bytes")
    data = b"\x08\x00\x50\x00"
    body.add(struct.pack(">I", 2 + len(data)) + bytes([1, 0x00]) + data, "PDV: length 6, context 1, data, more follows, 4 bytes")
    body.add(struct.pack(">I", 2) + bytes([1, 0x02]), "PDV: length 2, context 1, data + last, empty fragment (accepted, Annex E.1)")
    pdu(0x04, body, "P-DATA-TF with three PDVs (PS3.8 9.3.5, Annex E).", "hand_p_data_multi.hex")


def main():
    rq = associate_rq_full()
    associate_rq_unknown_items()
    associate_ac_full(rq)
    fixed(0x03, [0, 1, 1, 7], "A-ASSOCIATE-RJ: rejected-permanent, service-user, called-AE-title-not-recognized (upper-layer.md 12).",
          "hand_associate_rj.hex")
    fixed(0x05, [0, 0, 0, 0], "A-RELEASE-RQ (upper-layer.md 12).", "hand_release_rq.hex")
    fixed(0x06, [0, 0, 0, 0], "A-RELEASE-RP (upper-layer.md 12).", "hand_release_rp.hex")
    fixed(0x07, [0, 0, 0, 0], "A-ABORT by the service-user (upper-layer.md 12).", "hand_abort_user.hex")
    fixed(0x07, [0, 0, 2, 2], "A-ABORT by the service-provider, unexpected-PDU (upper-layer.md 12).", "hand_abort_provider.hex")
    p_data_multi()


if __name__ == "__main__":
    main()
