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
