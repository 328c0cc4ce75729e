/* mwl demo: fills a database with realistic worklist items scheduled from
 * today on, across a few stations and modalities, with names in several
 * character sets — for `make run`, for trying mwl out, and (with --count)
 * as the item generator of the benchmarks. Deterministic for a given seed
 * and start date. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "dicom/charset.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "store/store.h"
#include "util.h"

typedef struct station {
    const char *aet;
    const char *modality;
    const char *name;
    const char *location;
} station;

static const station stations[] = {
    {"CT01", "CT", "CT SCANNER 1", "RAD-1"}, {"CT02", "CT", "CT SCANNER 2", "RAD-1"},
    {"MR01", "MR", "MR 1.5T", "RAD-2"},      {"MR02", "MR", "MR 3T", "RAD-2"},
    {"US01", "US", "ULTRASOUND 1", "RAD-3"}, {"CR01", "CR", "X-RAY ROOM 1", "RAD-4"},
    {"MG01", "MG", "MAMMOGRAPHY", "RAD-5"},  {"NM01", "NM", "GAMMA CAMERA", "NUC-1"},
};

typedef struct procedure {
    const char *modality;
    const char *code;
    const char *meaning;
} procedure;

static const procedure procedures[] = {
    {"CT", "CTHEAD", "CT head without contrast"},
    {"CT", "CTCHEST", "CT chest with contrast"},
    {"CT", "CTABD", "CT abdomen and pelvis"},
    {"MR", "MRBRAIN", "MR brain"},
    {"MR", "MRKNEE", "MR knee left"},
    {"MR", "MRSPINE", "MR lumbar spine"},
    {"US", "USABD", "Ultrasound abdomen"},
    {"US", "USTHY", "Ultrasound thyroid"},
    {"CR", "CRCHEST", "Chest X-ray PA and lateral"},
    {"CR", "CRHAND", "Hand X-ray right"},
    {"MG", "MGSCREEN", "Screening mammography"},
    {"NM", "NMBONE", "Bone scintigraphy"},
};

/* (character set, name, sex) — UTF-8 source text; the store keeps each
 * item in the character set named, as real RIS feeds do. Names in a
 * script other than Latin, Greek or Cyrillic have three component groups
 * (PS3.5 6.2.1.2): alphabetic (romanised), ideographic, phonetic. */
typedef struct person {
    const char *charset;
    const char *name;
    char sex;
} person;

static const person people[] = {
    {"ISO_IR 100", "Müller^Hans", 'M'},
    {"ISO_IR 100", "Ødegård^Ingrid", 'F'},
    {"ISO_IR 100", "García^José", 'M'},
    {"ISO_IR 100", "Lefèvre^Chloé", 'F'},
    {"ISO_IR 192", "Yamada^Tarou=山田^太郎=やまだ^たろう", 'M'},
    {"ISO_IR 192", "Παπαδόπουλος^Νίκος", 'M'},
    {"ISO_IR 192", "Иванова^Анна", 'F'},
    {"ISO_IR 192", "Nguyễn^Văn An", 'M'},
    {"", "Smith^John", 'M'},
    {"", "Johnson^Mary", 'F'},
    {"", "Williams^Robert", 'M'},
    {"", "Brown^Patricia", 'F'},
    {"", "Mulligan^Sean", 'M'},
    {"", "Mulder^Fox", 'M'},
    {"", "Jones^Linda", 'F'},
    {"", "Miller^David", 'M'},
};

static const char *const physicians[] = {"House^Gregory", "Grey^Meredith", "Quinn^Michaela", "Kildare^James"};

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    /* xorshift64*: fast, deterministic, good enough for test data */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

static int set(mwl_ds *ds, uint32_t tag, const char *v)
{
    return mwl_ds_set_str(ds, tag, MWL_VR_NONE, v);
}

/* Encodes UTF-8 `text` into `charset` for PN/LO values. */
static int set_text(mwl_ds *ds, uint32_t tag, const mwl_charset *cs, const char *text)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc = mwl_charset_encode(cs, mwl_dict_vr(tag), text, strlen(text), &w, NULL);
    if (rc == MWL_OK) {
        if (w.len & 1)
            mwl_wbuf_put_u8(&w, ' ');
        rc = w.status != MWL_OK ? w.status : mwl_ds_set(ds, tag, mwl_dict_vr(tag), w.data, w.len);
    }
    mwl_wbuf_clear(&w);
    return rc;
}

static int make_item(mwl_arena *a, uint64_t n, const mwl_date *start, int days, mwl_ds **out)
{
    mwl_ds *ds;
    int rc = mwl_ds_new(a, NULL, &ds);
    if (rc != MWL_OK)
        return rc;
    const person *p = &people[rnd(sizeof people / sizeof people[0])];
    const station *s = &stations[rnd(sizeof stations / sizeof stations[0])];
    /* a procedure of the station's modality (every modality has one) */
    const procedure *matching[sizeof procedures / sizeof procedures[0]];
    uint32_t n_matching = 0;
    for (size_t i = 0; i < sizeof procedures / sizeof procedures[0]; i++) {
        if (strcmp(procedures[i].modality, s->modality) == 0)
            matching[n_matching++] = &procedures[i];
    }
    const procedure *pr = n_matching ? matching[rnd(n_matching)] : NULL;
    mwl_charset cs;
    mwl_charset_init_default(&cs);
    if (p->charset[0]) {
        rc = mwl_charset_parse(p->charset, strlen(p->charset), &cs, NULL);
        if (rc == MWL_OK)
            rc = set(ds, MWL_TAG_SpecificCharacterSet, p->charset);
    }
    char buf[80], date[9], birth[9], time_s[7];
    int day = days > 0 ? (int)rnd((uint32_t)days) : 0;
    tool_add_days(start, day, date);
    mwl_date epoch = {1930, 1, 1};
    tool_add_days(&epoch, (int)rnd(365 * 85), birth);
    snprintf(time_s, sizeof time_s, "%02u%02u00", 7 + rnd(11), rnd(4) * 15);
    if (rc == MWL_OK)
        rc = set_text(ds, MWL_TAG_PatientName, &cs, p->name);
    snprintf(buf, sizeof buf, "PID%07llu", (unsigned long long)(n * 7919 % 10000000));
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientID, buf);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientBirthDate, birth);
    char sex[2] = {p->sex, 0};
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_PatientSex, sex);
    snprintf(buf, sizeof buf, "ACC%09llu", (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_AccessionNumber, buf);
    if (rc == MWL_OK)
        rc = set_text(ds, MWL_TAG_ReferringPhysicianName, &cs, physicians[rnd(4)]);
    snprintf(buf, sizeof buf, "2.25.%llu%08u", (unsigned long long)(rng_state >> 8),
             (unsigned)n % 100000000u);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_StudyInstanceUID, buf);
    snprintf(buf, sizeof buf, "RP%08llu", (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_RequestedProcedureID, buf);
    const char *meaning = pr ? pr->meaning : "Unspecified procedure";
    if (rc == MWL_OK)
        rc = set_text(ds, MWL_TAG_RequestedProcedureDescription, &cs, meaning);
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_RequestedProcedurePriority, rnd(10) ? "ROUTINE" : "STAT");
    if (rc == MWL_OK)
        rc = set(ds, MWL_TAG_AdmissionID, "");
    mwl_ds *sps = NULL;
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledStationAETitle, s->aet);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStartDate, date);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStartTime, time_s);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_Modality, s->modality);
    if (rc == MWL_OK)
        rc = set_text(sps, MWL_TAG_ScheduledPerformingPhysicianName, &cs, physicians[rnd(4)]);
    if (rc == MWL_OK)
        rc = set_text(sps, MWL_TAG_ScheduledProcedureStepDescription, &cs, meaning);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledStationName, s->name);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepLocation, s->location);
    snprintf(buf, sizeof buf, "SPS%08llu", (unsigned long long)n);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepID, buf);
    if (rc == MWL_OK)
        rc = set(sps, MWL_TAG_ScheduledProcedureStepStatus, "SCHEDULED");
    if (rc == MWL_OK && pr) {
        mwl_ds *code;
        rc = mwl_ds_add_item(sps, MWL_TAG_ScheduledProtocolCodeSequence, &code);
        if (rc == MWL_OK)
            rc = set(code, MWL_TAG_CodeValue, pr->code);
        if (rc == MWL_OK)
            rc = set(code, MWL_TAG_CodingSchemeDesignator, "99MWL");
        if (rc == MWL_OK)
            rc = set_text(code, MWL_TAG_CodeMeaning, &cs, pr->meaning);
    }
    *out = ds;
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mwl demo [--db FILE] [--count N] [--days D] [--start YYYYMMDD] [--seed S] [--replace]\n"
            "\n"
            "Adds N realistic worklist items (default 60) scheduled over D days (default 7) from\n"
            "today (or --start) across stations CT01 CT02 MR01 MR02 US01 CR01 MG01 NM01, with names\n"
            "in ASCII, Latin-1 (ISO_IR 100) and UTF-8 (ISO_IR 192). --replace empties the database\n"
            "first. The same seed and start date give the same items.\n");
}

int mwl_cmd_demo(int argc, char **argv)
{
    const char *db = "mwl.db";
    long long count = 60, days = 7, seed = 1;
    bool replace = false;
    mwl_date start;
    mwl_date_today(&start);
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"count", required_argument, NULL, 'n'},
        {"days", required_argument, NULL, 'D'}, {"start", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'}, {"replace", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:n:D:s:S:rh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd': db = optarg; break;
        case 'n': count = strtoll(optarg, &end, 10); break;
        case 'D': days = strtoll(optarg, &end, 10); break;
        case 'S': seed = strtoll(optarg, &end, 10); break;
        case 's':
            if (mwl_date_parse(optarg, strlen(optarg), &start) != MWL_OK) {
                fprintf(stderr, "mwl demo: --start wants a date YYYYMMDD\n");
                return MWL_EXIT_USAGE;
            }
            break;
        case 'r': replace = true; break;
        case 'h': usage(stdout); return MWL_EXIT_OK;
        default: usage(stderr); return MWL_EXIT_USAGE;
        }
        if (end && (*end || count < 1 || count > 100000000 || days < 1 || days > 36500)) {
            fprintf(stderr, "mwl demo: bad number '%s'\n", optarg);
            return MWL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store *store;
    mwl_store_options bulk = {.settings = "sqlite.bulk=1"};
    if (mwl_store_open(db, &bulk, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl demo: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    int rc = mwl_store_begin(store, &d);
    if (rc == MWL_OK && replace)
        rc = mwl_store_clear(store, NULL, &d);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_store_put_stats st = {0, 0};
    for (long long i = 1; rc == MWL_OK && i <= count; i++) {
        mwl_ds *item;
        rc = make_item(&arena, (uint64_t)i, &start, (int)days, &item);
        if (rc == MWL_OK)
            rc = mwl_store_put_item(store, item, "demo", NULL, &st, &d);
        mwl_arena_clear(&arena);
        if (rc == MWL_OK && i % 50000 == 0) { /* bound the transaction's size */
            rc = mwl_store_commit(store, &d);
            if (rc == MWL_OK)
                rc = mwl_store_begin(store, &d);
        }
    }
    if (rc == MWL_OK)
        rc = mwl_store_commit(store, &d);
    else
        mwl_store_rollback(store);
    mwl_store_free(store);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl demo: %s\n", d.msg[0] ? d.msg : mwl_status_str(rc));
        return MWL_EXIT_FAILURE;
    }
    char first[9], last[9];
    tool_add_days(&start, 0, first);
    tool_add_days(&start, (int)days - 1, last);
    printf("mwl demo: %zu SPS added, %zu updated in %s, scheduled %s..%s\n", st.inserted, st.updated, db,
           first, last);
    return MWL_EXIT_OK;
}
