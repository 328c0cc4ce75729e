-- mwl store schema. Migrations run in order; PRAGMA user_version records the
-- last applied one. Never edit a released migration: add a new one.
--
-- One row per Scheduled Procedure Step: an imported worklist item with N
-- SPS items becomes N rows, each holding the whole item with exactly that
-- one SPS in (0040,0100). A C-FIND response is then one row, and SQL can
-- narrow on SPS-level keys directly. The C matcher is the only judge of a
-- match: these columns only narrow the candidates.

-- migration 1
CREATE TABLE sps (
    id                     INTEGER PRIMARY KEY,
    natural_key            TEXT NOT NULL UNIQUE, -- identity for re-import (see store.c)
    station_aet            TEXT,    -- first Scheduled Station AE Title (all in sps_station)
    start_date             TEXT,    -- SPS Start Date, YYYYMMDD
    start_time             TEXT,    -- SPS Start Time, HHMMSS[.F]
    modality               TEXT,
    sps_id                 TEXT,
    sps_status             TEXT,
    patient_id             TEXT,
    accession              TEXT,
    study_uid              TEXT,
    requested_procedure_id TEXT,
    charset                TEXT,    -- Specific Character Set of the item
    dataset                BLOB NOT NULL, -- Explicit VR Little Endian encoding
    source                 TEXT,    -- where it came from (file path, ...)
    updated_at             INTEGER NOT NULL -- unix seconds
);
CREATE TABLE sps_station (
    aet        TEXT NOT NULL,
    start_date TEXT,
    sps        INTEGER NOT NULL REFERENCES sps(id) ON DELETE CASCADE,
    PRIMARY KEY (aet, start_date, sps)
) WITHOUT ROWID;
CREATE INDEX sps_station_sps ON sps_station(sps);
-- Patient's Name, one row per component group, in the matcher's widest
-- folding (worklist mwl_pn_index_form), so a name prefix can narrow.
CREATE TABLE sps_name (
    name TEXT NOT NULL,
    sps  INTEGER NOT NULL REFERENCES sps(id) ON DELETE CASCADE,
    PRIMARY KEY (name, sps)
) WITHOUT ROWID;
CREATE INDEX sps_name_sps ON sps_name(sps);
CREATE INDEX sps_date_modality ON sps(start_date, modality);
CREATE INDEX sps_modality_date ON sps(modality, start_date);
CREATE INDEX sps_patient_id ON sps(patient_id);
CREATE INDEX sps_accession ON sps(accession);
CREATE INDEX sps_study_uid ON sps(study_uid);
CREATE INDEX sps_sps_id ON sps(sps_id);
CREATE INDEX sps_requested_procedure_id ON sps(requested_procedure_id);
CREATE INDEX sps_status ON sps(sps_status);

-- migration 2
-- The worklist (called AE title) an item belongs to, for serving a DCMTK
-- wlmscpfs-style tree where the called AE title selects the worklist.
ALTER TABLE sps ADD COLUMN worklist_aet TEXT;
CREATE INDEX sps_worklist_aet ON sps(worklist_aet, start_date);

-- migration 3
-- The keyset cursor seeks with (start_date, start_time, id) > (...), a row
-- value comparison that NULL would break: both columns become NOT NULL,
-- '' when absent (and at most 31 bytes, the cursor's position buffers; the
-- store writes canonical dates and times, see worklist mwl_sps_index). The
-- station and name index tables get copies of start_date and start_time
-- so that the SPS of one station or one exact name are walked in cursor
-- order, and the sps indexes used to walk in that order end with
-- start_time. SQLite cannot add NOT NULL to a column: the tables are
-- rebuilt (children first dropped, so dropping sps cascades nothing; the
-- renames rewrite the foreign keys).
CREATE TABLE sps_v3 (
    id                     INTEGER PRIMARY KEY,
    natural_key            TEXT NOT NULL UNIQUE, -- identity for re-import (worklist mwl_sps_index)
    station_aet            TEXT,    -- first Scheduled Station AE Title (all in sps_station)
    start_date             TEXT NOT NULL DEFAULT '', -- SPS Start Date, YYYYMMDD
    start_time             TEXT NOT NULL DEFAULT '', -- SPS Start Time, HH[MM[SS[.FFFFFF]]]
    modality               TEXT,
    sps_id                 TEXT,
    sps_status             TEXT,
    patient_id             TEXT,
    accession              TEXT,
    study_uid              TEXT,
    requested_procedure_id TEXT,
    charset                TEXT,    -- Specific Character Set of the item
    dataset                BLOB NOT NULL, -- Explicit VR Little Endian encoding
    source                 TEXT,    -- where it came from (file path, ...)
    updated_at             INTEGER NOT NULL, -- unix seconds
    worklist_aet           TEXT     -- the worklist (called AE title) it belongs to
);
INSERT INTO sps_v3 (id, natural_key, station_aet, start_date, start_time, modality, sps_id, sps_status,
                    patient_id, accession, study_uid, requested_procedure_id, charset, dataset, source,
                    updated_at, worklist_aet)
    SELECT id, natural_key, station_aet, substr(coalesce(start_date, ''), 1, 31),
           substr(coalesce(start_time, ''), 1, 31), modality, sps_id, sps_status, patient_id, accession,
           study_uid, requested_procedure_id, charset, dataset, source, updated_at, worklist_aet
    FROM sps;
CREATE TABLE sps_station_v3 (
    aet        TEXT NOT NULL,
    start_date TEXT NOT NULL, -- copies of the SPS's, so the station index
    start_time TEXT NOT NULL, -- is in cursor order
    sps        INTEGER NOT NULL REFERENCES sps_v3(id) ON DELETE CASCADE,
    PRIMARY KEY (aet, start_date, start_time, sps)
) WITHOUT ROWID;
INSERT INTO sps_station_v3 (aet, start_date, start_time, sps)
    SELECT st.aet, s.start_date, s.start_time, st.sps FROM sps_station st JOIN sps_v3 s ON s.id = st.sps;
CREATE TABLE sps_name_v3 (
    name       TEXT NOT NULL,
    start_date TEXT NOT NULL,
    start_time TEXT NOT NULL,
    sps        INTEGER NOT NULL REFERENCES sps_v3(id) ON DELETE CASCADE,
    PRIMARY KEY (name, start_date, start_time, sps)
) WITHOUT ROWID;
INSERT INTO sps_name_v3 (name, start_date, start_time, sps)
    SELECT n.name, s.start_date, s.start_time, n.sps FROM sps_name n JOIN sps_v3 s ON s.id = n.sps;
DROP TABLE sps_station;
DROP TABLE sps_name;
DROP TABLE sps;
ALTER TABLE sps_v3 RENAME TO sps;
ALTER TABLE sps_station_v3 RENAME TO sps_station;
ALTER TABLE sps_name_v3 RENAME TO sps_name;
CREATE INDEX sps_station_sps ON sps_station(sps);
CREATE INDEX sps_name_sps ON sps_name(sps);
CREATE INDEX sps_start ON sps(start_date, start_time);
CREATE INDEX sps_modality_start ON sps(modality, start_date, start_time);
CREATE INDEX sps_status_start ON sps(sps_status, start_date, start_time);
CREATE INDEX sps_worklist_aet_start ON sps(worklist_aet, start_date, start_time);
CREATE INDEX sps_patient_id ON sps(patient_id);
CREATE INDEX sps_accession ON sps(accession);
CREATE INDEX sps_study_uid ON sps(study_uid);
CREATE INDEX sps_sps_id ON sps(sps_id);
CREATE INDEX sps_requested_procedure_id ON sps(requested_procedure_id);

-- migration 4
-- The intake log of the HL7 order feed (issue 12): each message applied,
-- keyed by sender and message control ID, with the acknowledgement sent,
-- so a retransmission (the ACK was lost) is not applied twice and gets the
-- same ACK -- also after a restart. recorded_at (unix ms) is what pruning
-- goes by. A rowid table: keys and replies of a few KiB would make a
-- WITHOUT ROWID b-tree's pages hold few rows.
CREATE TABLE intake (
    key         TEXT NOT NULL UNIQUE,
    reply       TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX intake_recorded_at ON intake(recorded_at);
-- When the SPS status last changed (unix ms; set at insert, and by every
-- write that changes sps_status), so "finished more than H hours ago" can
-- be expired. updated_at moves with any change (a demographics update), so
-- it cannot tell. Rows from before take their updated_at.
ALTER TABLE sps ADD COLUMN status_changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE sps SET status_changed_at = updated_at * 1000;
