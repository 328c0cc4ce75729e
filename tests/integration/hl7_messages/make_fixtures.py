#!/usr/bin/env python3
"""Writes the HL7 v2 fixture messages of tests/integration/hl7_feed.py and
hl7_node.py (issue 12) into this directory, each in the bytes its RIS sends.

  make_fixtures.py           (re)write every *.hl7 file
  make_fixtures.py --check   exit 1 when a committed file differs from what
                             this script would write (hl7_feed.py runs this)

Segments are built from {field number: value} maps, so field positions are
counted once, here, and not by hand in the files. Files hold one message per
paragraph (messages separated by a blank line), segments ended by LF:
`mwl hl7send` turns LF into the CR segment terminator; the tests that send
raw MLLP frames do the same. The files are bytes (`-text` in
.gitattributes): Latin-1, UTF-8 and ISO-2022-JP as the message's MSH-18
says (or as a feed with MSH-18 empty sends: Latin-1).

Three RIS styles (field usage differs, as it does between products):
  classic_*  "classic" HL7 2.3.1 ORM^O01 RIS: OBR-18 accession, OBR-19
             requested procedure ID, OBR-20 SPS ID, ZDS-1 Study UID,
             ORC-7.4 = OBR-27.4 start, ORC-7.6 priority, OBR-4.4-.6 protocol,
             OBR-44 procedure code; MSH-18 empty with ISO 8859-1 bytes; no
             station AE (the server's hl7-station rule for CT at PV1-3.1
             CTSUITE gives it).
  omi_*      HL7 2.5.1 OMI^O23, UNICODE UTF-8, TQ1-7 start, TQ1-9 priority,
             two IPC segments (two SPS in one message), IPC-9 station AE.
  jp_*       HL7 2.3.1 ORM^O01 of a Japanese RIS, MSH-18 ISO IR87
             (ISO-2022-JP bytes), no ZDS (the server generates the Study UID),
             protocol codes in OBR-4, two ORC/OBR pairs (two SPS).
  latin2_*   the classic style with MSH-18 empty and ISO 8859-2 bytes, for a
             server whose hl7-charset says 8859/2.
Plus ADT^A08 / ADT^A40, the malformed and unsupported messages, and the
order the Node.js client (hl7_node.py) sends.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def seg(name, fields):
    """One segment from {field number: value}; missing numbers are empty."""
    last = max(fields) if fields else 0
    return "|".join([name] + [fields.get(i, "") for i in range(1, last + 1)])


def msh(fields):
    """MSH: field 1 is '|' and 2 the encoding characters, so the map starts at 3."""
    last = max(fields)
    return "MSH|^~\\&|" + "|".join(fields.get(i, "") for i in range(3, last + 1))


def message(*segments):
    return "\n".join(segments) + "\n"


# ---------------------------------------------------------------------------
# (a) classic 2.3.1 ORM^O01 RIS, Latin-1 with MSH-18 empty

CLASSIC_UID = "1.2.826.0.1.3680043.9.7777.100.1"


def classic_msh(control_id, time):
    return msh({3: "CLASSICRIS", 4: "RADIOLOGY", 5: "MWL", 6: "MWLSRV", 7: time, 9: "ORM^O01",
                10: control_id, 11: "P", 12: "2.3.1"})


def classic_pid(full=True):
    f = {1: "1", 3: "CL10001^^^CLASSICHOSP", 5: "MÜLLER^JÖRG^K^^PROF", 8: "M"}
    if full:
        f[7] = "19650412"
    return seg("PID", f)


def classic_pv1(full=True):
    f = {1: "1", 2: "O", 3: "CTSUITE^^^CLASSICHOSP"}
    if full:
        f[8] = "0815^BRAUN^HEINZ^^^DR"
        f[19] = "VN7001"
    return seg("PV1", f)


def classic_orc(control, status, start, priority):
    return seg("ORC", {1: control, 2: "PLC7001", 3: "FLC7001", 5: status, 7: "^^^%s^^%s" % (start, priority),
                       9: "20270301085900", 12: "0815^BRAUN^HEINZ^^^DR"})


CLASSIC_OBR4 = "CTABD^CT Abdomen^LOCALRIS^P_ABD_PV^Abdomen portal venous^LOCALRIS"


def classic_obr(start, priority, full=True, requesting="4711^KLEIN^PETRA^^^DR"):
    f = {1: "1", 2: "PLC7001", 3: "FLC7001", 4: CLASSIC_OBR4, 16: requesting, 18: "ACCCL7001", 19: "RPCL7001",
         20: "SPSCL7001", 24: "CT", 27: "^^^%s^^%s" % (start, priority)}
    if full:
        f[13] = "Kontrastmittelallergie"
        f[31] = "^Verdacht auf Appendizitis"
        f[34] = "1234&SCHMIDT&ANNA"
        f[44] = "CTABD^CT Abdomen^LOCALRIS"
    return seg("OBR", f)


def classic_zds():
    return seg("ZDS", {1: CLASSIC_UID + "^CLASSICRIS^Application^DICOM"})


def classic_files():
    files = {}
    files["classic_orm_nw.hl7"] = message(
        classic_msh("CLS00001", "20270301090000"), classic_pid(), classic_pv1(),
        classic_orc("NW", "SC", "20270310143000", "S"), classic_obr("20270310143000", "S"), classic_zds())
    # XO #1: new start; OBR-16 sent as "" (clear the Requesting Physician);
    # PID-7, PV1-8, PV1-19, OBR-13, OBR-31, OBR-34 and OBR-44 absent (keep).
    files["classic_orm_xo1.hl7"] = message(
        classic_msh("CLS00002", "20270302090000"), classic_pid(full=False), classic_pv1(full=False),
        classic_orc("XO", "SC", "20270311091500", "S"),
        classic_obr("20270311091500", "S", full=False, requesting='""'), classic_zds())
    # XO #2: a later change, start and priority again.
    files["classic_orm_xo2.hl7"] = message(
        classic_msh("CLS00003", "20270303090000"), classic_pid(full=False), classic_pv1(full=False),
        classic_orc("XO", "SC", "20270312100000", "R"),
        classic_obr("20270312100000", "R", full=False, requesting=""), classic_zds())
    files["classic_orm_ca.hl7"] = message(
        classic_msh("CLS00004", "20270304090000"), classic_pid(full=False), classic_pv1(full=False),
        seg("ORC", {1: "CA", 2: "PLC7001", 3: "FLC7001", 5: "CA"}),
        seg("OBR", {1: "1", 2: "PLC7001", 3: "FLC7001", 4: CLASSIC_OBR4, 18: "ACCCL7001", 19: "RPCL7001",
                    20: "SPSCL7001", 24: "CT"}),
        classic_zds())
    # Another sending application that happens to use the same MSH-10 as
    # classic_orm_nw.hl7: not a retransmission (the key is MSH-3/4 + MSH-10).
    files["other_sender_same_id.hl7"] = message(
        msh({3: "OTHERRIS", 4: "ANNEX", 5: "MWL", 6: "MWLSRV", 7: "20270301091500", 9: "ORM^O01", 10: "CLS00001",
             11: "P", 12: "2.3.1"}),
        seg("PID", {1: "1", 3: "OT50001^^^ANNEXHOSP", 5: "WEIß^HANNA", 7: "19990909", 8: "F"}),
        seg("PV1", {1: "1", 2: "O", 3: "CTSUITE"}),
        seg("ORC", {1: "NW", 2: "PLO1", 3: "FLO1", 5: "SC", 7: "^^^20270310150000^^R"}),
        seg("OBR", {1: "1", 2: "PLO1", 3: "FLO1", 4: CLASSIC_OBR4, 18: "ACCOT1", 19: "RPOT1", 20: "SPSOT1", 24: "CT",
                    27: "^^^20270310150000^^R"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.500.1^OTHERRIS^Application^DICOM"}))
    return {k: v.encode("iso-8859-1") for k, v in files.items()}


# ---------------------------------------------------------------------------
# (b) 2.5.1 OMI^O23, UTF-8, two IPC segments

OMI_UID = "1.2.826.0.1.3680043.9.7777.200.1"
OMI_PID3 = "PAT123^^^HOSP&1.2.3.4.5&ISO^MR"


def omi_msh(control_id, time, msg_type="OMI^O23^OMI_O23", charset="UNICODE UTF-8", sender="OMIRIS",
            version="2.5.1", processing="P"):
    f = {3: sender, 4: "IMAGING", 5: "MWL", 6: "MWLSRV", 7: time, 9: msg_type, 10: control_id, 11: processing,
         12: version}
    if charset:
        f[18] = charset
    return msh(f)


def omi_ipc(sps, protocol, station, aet):
    return seg("IPC", {1: "ACC555^RIS", 2: "RP555", 3: OMI_UID, 4: sps, 5: "CT", 6: protocol, 7: station,
                       8: "RAD-CT", 9: aet})


def omi_files():
    files = {}
    files["omi_nw.hl7"] = message(
        omi_msh("OMI00001", "20270301101500"),
        seg("PID", {3: OMI_PID3, 5: "ŁUKASZEWICZ^ŻANETA^^II^DR", 7: "19700215", 8: "F"}),
        seg("PV1", {2: "O", 3: "RAD^XR1^^HOSP", 8: "1234^WELBY^MARCUS^^^DR", 19: "V5678^^^HOSP"}),
        seg("ORC", {1: "NW", 2: "PL1001^EHR", 3: "FL2002^RIS", 5: "SC", 9: "20270301101400",
                    12: "1234^WELBY^MARCUS^^^DR"}),
        seg("TQ1", {1: "1", 7: "20270302083000", 9: "A^ASAP^HL70485"}),
        seg("OBR", {1: "1", 2: "PL1001^EHR", 3: "FL2002^RIS", 4: "CTCHEST^CT chest^L", 16: "5678^NOWAK^EWA^^^DR",
                    24: "CT", 31: "^Kaszel od 3 tygodni, duszność", 44: "CTCHEST^CT chest^L"}),
        omi_ipc("SPS555A", "P01^Chest routine^L", "CTROOM1", "CT01"),
        omi_ipc("SPS555B", "P02^Chest contrast^L", "CTROOM2", "CT02"))
    # A second patient with the same Patient ID under another issuer: A08 of
    # PAT123^^^HOSP must leave it alone. ASCII only, MSH-18 empty.
    files["omi_decoy_nw.hl7"] = message(
        omi_msh("OMI00009", "20270301110000", charset=""),
        seg("PID", {3: "PAT123^^^OTHERHOSP^MR", 5: "DECOY^DAISY", 7: "19800101", 8: "F"}),
        seg("PV1", {2: "O", 3: "MRT^^^OTHERHOSP"}),
        seg("ORC", {1: "NW", 2: "PL9001", 3: "FL9001", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270305120000"}),
        seg("OBR", {1: "1", 2: "PL9001", 3: "FL9001", 4: "MRBRAIN^MR brain^L", 24: "MR"}),
        seg("IPC", {1: "ACC999", 2: "RP999", 3: "1.2.826.0.1.3680043.9.7777.300.1", 4: "SPS999", 5: "MR",
                    6: "P09^Brain^L", 9: "MR01"}))
    # DC of the second SPS only (ORC-1 DC, ORC-5 CA: DISCONTINUED).
    files["omi_dc_b.hl7"] = message(
        omi_msh("OMI00002", "20270303101500"),
        seg("PID", {3: OMI_PID3, 5: "ŁUKASZEWICZ-NOWAK^ŻANETA^MARIA^^DR", 7: "19700216", 8: "F"}),
        seg("ORC", {1: "DC", 2: "PL1001^EHR", 3: "FL2002^RIS", 5: "CA"}),
        seg("OBR", {1: "1", 2: "PL1001^EHR", 3: "FL2002^RIS", 4: "CTCHEST^CT chest^L", 24: "CT"}),
        seg("IPC", {1: "ACC555^RIS", 2: "RP555", 3: OMI_UID, 4: "SPS555B", 5: "CT"}))
    # RAD-12: new name and corrected birth date; sex absent (keep).
    files["adt_a08_rename.hl7"] = message(
        omi_msh("ADT00001", "20270302120000", msg_type="ADT^A08^ADT_A01", sender="ADTSYS"),
        seg("EVN", {2: "20270302120000"}),
        seg("PID", {3: OMI_PID3, 5: "ŁUKASZEWICZ-NOWAK^ŻANETA^MARIA^^DR", 7: "19700216"}),
        seg("PV1", {2: "O"}))
    return {k: v.encode("utf-8") for k, v in files.items()}


# ---------------------------------------------------------------------------
# (c) Japanese 2.3.1 ORM^O01, ISO IR87, no ZDS, two ORC/OBR pairs


def jp_msh(control_id, time, msg_type="ORM^O01", jahis=False):
    f = {3: "JPRIS", 4: "HOSPJP", 5: "MWL", 6: "MWLSRV", 7: time, 9: msg_type, 10: control_id, 11: "P",
         12: "2.3.1", 18: "ISO IR87"}
    if jahis:  # the JAHIS convention: ASCII by default, ISO IR87 by ISO 2022 escapes
        f[18], f[20] = "~ISO IR87", "ISO 2022-1994"
    return msh(f)


def jp_order(control_id, time, jahis=False):
    pairs = []
    for n, (sps, start, proto) in enumerate((("SPSJP3001", "20270315090000", "T1AX^T1 axial"),
                                              ("SPSJP3002", "20270315093000", "T2COR^T2 coronal")), 1):
        pairs.append(seg("ORC", {1: "NW", 2: "PLJ3001", 3: "FLJ3001", 5: "SC", 7: "^^^%s^^R" % start}))
        pairs.append(seg("OBR", {1: str(n), 2: "PLJ3001", 3: "FLJ3001", 4: "MRHEAD^MR Head^JPRIS^%s^JPRIS" % proto,
                                 18: "ACCJP3001", 19: "RPJP3001", 20: sps, 24: "MR", 27: "^^^%s^^R" % start,
                                 44: "MRHEAD^頭部MRI^JPRIS"}))
    text = message(jp_msh(control_id, time, jahis=jahis),
                   seg("PID", {1: "1", 3: "JP10001", 5: "山田^太郎", 7: "19750620", 8: "M"}),
                   seg("PV1", {1: "1", 2: "O", 3: "MRI1^^^HOSPJP", 8: "D001^佐藤^一郎"}),
                   *pairs)
    if jahis:  # another patient and order, so it can be told apart
        for old, new in (("JP10001", "JP30003"), ("PLJ3001", "PLJ5001"), ("FLJ3001", "FLJ5001"),
                         ("ACCJP3001", "ACCJP5001"), ("RPJP3001", "RPJP5001"), ("SPSJP300", "SPSJP500")):
            text = text.replace(old, new)
    return text


def jp_files():
    files = {}
    files["jp_orm_nw.hl7"] = jp_order("JPN00001", "20270301080000")
    # The same order sent again by the RIS (new MSH-10: not a
    # retransmission): the generated Study UID must be the same.
    files["jp_orm_nw_again.hl7"] = jp_order("JPN00002", "20270301083000")
    # A Japanese RIS following JAHIS: MSH-18 "~ISO IR87" (first repetition
    # empty = ASCII, ISO IR87 reached by ISO 2022 escapes), MSH-20
    # "ISO 2022-1994"; same bytes as jp_orm_nw.hl7 otherwise.
    files["jp_jahis_orm_nw.hl7"] = jp_order("JPN00005", "20270301084000", jahis=True)
    # RAD-12 merge: JP10001 was a wrong registration, JP20002 survives.
    files["adt_a40_merge.hl7"] = message(
        jp_msh("JPN00003", "20270302080000", msg_type="ADT^A40"),
        seg("EVN", {1: "A40", 2: "20270302080000"}),
        seg("PID", {1: "1", 3: "JP20002", 5: "山田^太郎", 7: "19750620", 8: "M"}),
        seg("MRG", {1: "JP10001"}))
    return {k: v.encode("iso2022_jp") for k, v in files.items()}


# ---------------------------------------------------------------------------
# Malformed and unsupported messages, and the orders sent around them


def error_files():
    files = {}
    # 2.3.1 order without PID-3: AE, ERR at PID^1^3.
    files["err_missing_pid3.hl7"] = message(
        classic_msh("ERR00001", "20270305090000"),
        seg("PID", {1: "1", 5: "NOID^NOBODY", 7: "19600101", 8: "M"}),
        seg("PV1", {1: "1", 2: "O", 3: "CTSUITE"}),
        seg("ORC", {1: "NW", 2: "PLE1", 3: "FLE1", 5: "SC", 7: "^^^20270320100000^^R"}),
        seg("OBR", {1: "1", 2: "PLE1", 3: "FLE1", 4: CLASSIC_OBR4, 18: "ACCERR1", 19: "RPERR1", 20: "SPSERR1",
                    24: "CT", 27: "^^^20270320100000^^R"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.900.1^CLASSICRIS^Application^DICOM"}))
    # Several messages in one file (hl7send sends them one after another).
    batch = []
    batch.append(message(  # unsupported message type: AR
        classic_msh("BAD00001", "20270305091000").replace("ORM^O01", "ORU^R01"),
        seg("PID", {1: "1", 3: "CL10001^^^CLASSICHOSP", 5: "MÜLLER^JÖRG"}),
        seg("OBR", {1: "1", 4: "GLU^Glucose^L"}),
        seg("OBX", {1: "1", 2: "NM", 3: "GLU^Glucose^L", 5: "5.4", 6: "mmol/l"})))
    batch.append(message(  # unsupported version 2.1: AR
        classic_msh("BAD00002", "20270305092000").replace("|2.3.1", "|2.1"),
        seg("PID", {1: "1", 3: "BADV1^^^CLASSICHOSP", 5: "VERSION^OLD"}),
        seg("ORC", {1: "NW", 2: "PLE2", 5: "SC", 7: "^^^20270320110000^^R"}),
        seg("OBR", {1: "1", 2: "PLE2", 4: CLASSIC_OBR4, 18: "ACCERR2", 19: "RPERR2", 20: "SPSERR2", 24: "CT"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.900.2^CLASSICRIS^Application^DICOM"})))
    batch.append(message(  # unsupported processing ID X (table 0103 has P, T, D): AR
        classic_msh("BAD00003", "20270305093000").replace("|P|2.3.1", "|X|2.3.1"),
        seg("PID", {1: "1", 3: "BADP1^^^CLASSICHOSP", 5: "PROCESSING^ID"}),
        seg("ORC", {1: "NW", 2: "PLE3", 5: "SC", 7: "^^^20270320120000^^R"}),
        seg("OBR", {1: "1", 2: "PLE3", 4: CLASSIC_OBR4, 18: "ACCERR3", 19: "RPERR3", 20: "SPSERR3", 24: "CT"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.900.3^CLASSICRIS^Application^DICOM"})))
    batch.append(message(  # bad start date in ORC-7.4 (7 digits), OBR-27 empty: AE at ORC^1^7
        classic_msh("BAD00004", "20270305094000"),
        seg("PID", {1: "1", 3: "BADD1^^^CLASSICHOSP", 5: "DATE^BAD"}),
        seg("PV1", {1: "1", 2: "O", 3: "CTSUITE"}),
        seg("ORC", {1: "NW", 2: "PLE4", 3: "FLE4", 5: "SC", 7: "^^^2025133^^R"}),
        seg("OBR", {1: "1", 2: "PLE4", 3: "FLE4", 4: CLASSIC_OBR4, 18: "ACCERR4", 19: "RPERR4", 20: "SPSERR4",
                    24: "CT"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.900.4^CLASSICRIS^Application^DICOM"})))
    batch.append(message(  # bad birth date in PID-7 of a 2.5.1 OMI: AE at PID^1^7
        omi_msh("BAD00005", "20270305095000", charset=""),
        seg("PID", {3: "BADB1^^^HOSP", 5: "BIRTH^BAD", 7: "2025133", 8: "F"}),
        seg("ORC", {1: "NW", 2: "PLE5", 3: "FLE5", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270320130000"}),
        seg("OBR", {1: "1", 2: "PLE5", 3: "FLE5", 4: "CTCHEST^CT chest^L", 24: "CT"}),
        seg("IPC", {1: "ACCERR5", 2: "RPERR5", 3: "1.2.826.0.1.3680043.9.7777.900.5", 4: "SPSERR5", 5: "CT",
                    9: "CT01"})))
    batch.append(message(  # bytes that are not UTF-8 (FF FE) under UNICODE UTF-8: AE, never stored
        omi_msh("BAD00006", "20270305096000"),
        seg("PID", {3: "BADU1^^^HOSP", 5: "BAD\xff\xfeNAME^X", 7: "19600101", 8: "F"}),
        seg("ORC", {1: "NW", 2: "PLE6", 3: "FLE6", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270320140000"}),
        seg("OBR", {1: "1", 2: "PLE6", 3: "FLE6", 4: "CTCHEST^CT chest^L", 24: "CT"}),
        seg("IPC", {1: "ACCERR6", 2: "RPERR6", 3: "1.2.826.0.1.3680043.9.7777.900.6", 4: "SPSERR6", 5: "CT",
                    9: "CT01"})))
    files["err_batch.hl7"] = "\n".join(batch)
    # Sent as raw MLLP frames on one connection (hl7_feed.py): garbage, a
    # 2.5.1 order without PID-3, an ORU, then an order that must be stored.
    files["raw_garbage.hl7"] = "this is not an HL7 message\nneither|is^this\n"
    files["raw_missing_pid3.hl7"] = message(
        omi_msh("RAW00002", "20270306090000", charset=""),
        seg("PID", {5: "NOID^NOBODY", 7: "19600101", 8: "M"}),
        seg("ORC", {1: "NW", 2: "PLR2", 3: "FLR2", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270321090000"}),
        seg("OBR", {1: "1", 2: "PLR2", 3: "FLR2", 4: "CTCHEST^CT chest^L", 24: "CT"}),
        seg("IPC", {1: "ACCRAW2", 2: "RPRAW2", 3: "1.2.826.0.1.3680043.9.7777.901.2", 4: "SPSRAW2", 5: "CT",
                    9: "CT01"}))
    files["raw_oru.hl7"] = message(
        omi_msh("RAW00003", "20270306091000", msg_type="ORU^R01^ORU_R01", charset=""),
        seg("PID", {3: "RAWP1^^^HOSP", 5: "RESULT^ONLY"}),
        seg("OBR", {1: "1", 4: "GLU^Glucose^L"}),
        seg("OBX", {1: "1", 2: "NM", 3: "GLU^Glucose^L", 5: "5.4", 6: "mmol/l"}))
    files["raw_after_errors.hl7"] = message(
        omi_msh("RAW00004", "20270306092000", charset=""),
        seg("PID", {3: "RAWP1^^^HOSP", 5: "AFTER^ERRORS", 7: "19910909", 8: "O"}),
        seg("ORC", {1: "NW", 2: "PLR4", 3: "FLR4", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270321100000"}),
        seg("OBR", {1: "1", 2: "PLR4", 3: "FLR4", 4: "CTCHEST^CT chest^L", 24: "CT"}),
        seg("IPC", {1: "ACCRAW4", 2: "RPRAW4", 3: "1.2.826.0.1.3680043.9.7777.901.4", 4: "SPSRAW4", 5: "CT",
                    6: "P01^Chest routine^L", 9: "CT03"}))
    # Sent by the Node.js client (hl7_node.py).
    files["node_omi_nw.hl7"] = message(
        omi_msh("NODE00001", "20270307090000", sender="NODERIS"),
        seg("PID", {3: "NODEP1^^^HOSP", 5: "NODE^NÖRA", 7: "19880808", 8: "F"}),
        seg("PV1", {2: "O", 8: "77^HOUSE^GREGORY^^^DR"}),
        seg("ORC", {1: "NW", 2: "PLN1", 3: "FLN1", 5: "SC"}),
        seg("TQ1", {1: "1", 7: "20270322110000", 9: "S^Stat^HL70485"}),
        seg("OBR", {1: "1", 2: "PLN1", 3: "FLN1", 4: "USABD^US abdomen^L", 24: "US", 44: "USABD^US abdomen^L"}),
        seg("IPC", {1: "ACCNODE1", 2: "RPNODE1", 3: "1.2.826.0.1.3680043.9.7777.902.1", 4: "SPSNODE1", 5: "US",
                    6: "U01^Abdomen standard^L", 9: "US01"}))
    # err_batch.hl7 is written byte for byte (Latin-1 maps U+0000-U+00FF to
    # single bytes): its last message holds FF FE where UTF-8 is declared.
    return {k: v.encode("iso-8859-1" if not k.startswith(("raw_", "node_")) else "utf-8") for k, v in files.items()}


def latin2_files():
    """For a server with hl7-charset = 8859/2: MSH-18 empty, ISO 8859-2 bytes
    (0xA3 is Ł there, £ in Latin-1)."""
    text = message(
        msh({3: "CLASSICRIS", 4: "KRAKOW", 5: "MWL", 6: "MWLSRV", 7: "20270308090000", 9: "ORM^O01",
             10: "PL200001", 11: "P", 12: "2.3.1"}),
        seg("PID", {1: "1", 3: "PL20001^^^KRAKOWHOSP", 5: "ŁUKASIK^MAŁGORZATA", 7: "19820304", 8: "F"}),
        seg("PV1", {1: "1", 2: "O", 3: "CTSUITE"}),
        seg("ORC", {1: "NW", 2: "PLK1", 3: "FLK1", 5: "SC", 7: "^^^20270324080000^^R"}),
        seg("OBR", {1: "1", 2: "PLK1", 3: "FLK1", 4: "CTHEAD^CT głowy^LOCALRIS^P_HEAD^Głowa bez kontrastu^LOCALRIS",
                    18: "ACCPL1", 19: "RPPL1", 20: "SPSPL1", 24: "CT", 27: "^^^20270324080000^^R"}),
        seg("ZDS", {1: "1.2.826.0.1.3680043.9.7777.400.1^CLASSICRIS^Application^DICOM"}))
    return {"latin2_orm_nw.hl7": text.encode("iso-8859-2")}


def all_files():
    out = {}
    for part in (classic_files, omi_files, jp_files, error_files, latin2_files):
        out.update(part())
    return out


def main():
    check_only = sys.argv[1:] == ["--check"]
    bad = []
    for name, data in sorted(all_files().items()):
        path = os.path.join(HERE, name)
        if check_only:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        bad.append(name)
            except OSError:
                bad.append(name)
        else:
            with open(path, "wb") as f:
                f.write(data)
    if bad:
        print("fixtures differ from make_fixtures.py: %s" % ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
