/* The configuration tables' repeatable keys (MWL_CONFIG_LIST) with a toy
 * item type, beside single-valued keys in the same table: every
 * occurrence appends, the parse stays atomic, bounds hold, and the
 * formatting functions give back text that parses to the same list. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "check.h"

/* An item: "NAME:NUMBER", NAME 1..7 letters, NUMBER 0..999. */
typedef struct pair {
    char name[8];
    unsigned number;
} pair;

#define PAIRS_MAX 4

typedef struct pair_list {
    size_t count;
    pair item[PAIRS_MAX];
} pair_list;

typedef struct toy {
    uint32_t size;
    pair_list pairs;
    char title[17];
} toy;

static int pair_parse(const char *text, void *item, mwl_diag *diag)
{
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : 0;
    if (!colon || n == 0 || n > 7) {
        mwl_diag_set(diag, 0, 0, "'%.20s' is not NAME:NUMBER", text);
        return MWL_E_INVALID;
    }
    unsigned v = 0;
    size_t digits = strlen(colon + 1);
    if (digits == 0 || digits > 3) {
        mwl_diag_set(diag, 0, 0, "bad number");
        return MWL_E_INVALID;
    }
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9') {
            mwl_diag_set(diag, 0, 0, "bad number");
            return MWL_E_INVALID;
        }
        v = v * 10u + (unsigned)(*p - '0');
    }
    pair *out = item;
    memset(out, 0, sizeof *out);
    memcpy(out->name, text, n);
    out->number = v;
    return MWL_OK;
}

static size_t pair_format(const void *item, char *out, size_t cap)
{
    const pair *p = item;
    int n = snprintf(out, cap, "%s:%u", p->name, p->number);
    return n > 0 ? (size_t)n : 0;
}

static bool pair_equal(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return strcmp(x->name, y->name) == 0 && x->number == y->number;
}

static const mwl_config_list_ops pair_ops = {
    sizeof(pair), offsetof(pair_list, item), "NAME:N", pair_parse, pair_format, pair_equal};

static const mwl_config_key toy_keys[] = {
    {"size", MWL_CONFIG_UINT, "3", 1, 10, offsetof(toy, size), "a number", NULL},
    {"pair", MWL_CONFIG_LIST, "", 0, PAIRS_MAX, offsetof(toy, pairs), "repeatable", &pair_ops},
    {"title", MWL_CONFIG_AET, "TOY", 1, 16, offsetof(toy, title), "an AE title", NULL},
};

static const mwl_config_table toy_table = {"toy", toy_keys, 3, sizeof(toy)};

static int parse(const char *text, toy *t, mwl_diag *diag)
{
    const mwl_config_table *tables[1] = {&toy_table};
    void *objs[1] = {t};
    return mwl_config_parse(text, strlen(text), tables, objs, 1, diag);
}

static void test_defaults_and_hints(void)
{
    toy t;
    memset(&t, 0x5A, sizeof t);
    mwl_config_init(&toy_table, &t);
    CHECK_EQ_INT(t.size, 3);
    CHECK_EQ_INT(t.pairs.count, 0);
    CHECK_EQ_STR(t.title, "TOY");
    const mwl_config_key *k = mwl_config_find(&toy_table, "pair");
    CHECK(k != NULL);
    if (!k)
        return;
    CHECK_EQ_STR(mwl_config_key_hint(k), "NAME:N");
    CHECK_EQ_STR(mwl_config_type_hint(MWL_CONFIG_LIST), "ITEM");
    CHECK_EQ_STR(mwl_config_key_hint(&toy_keys[0]), "N");
    CHECK_EQ_INT(mwl_config_count(k, &t), 0);
    CHECK_EQ_INT(mwl_config_count(&toy_keys[0], &t), 1);
    char out[64] = "x";
    CHECK_EQ_INT(mwl_config_format(k, &t, out, sizeof out), 0);
    CHECK_EQ_STR(out, "");
}

static void test_every_line_appends(void)
{
    toy t;
    mwl_config_init(&toy_table, &t);
    mwl_diag diag;
    CHECK_EQ_INT(parse("pair = ab:1\nsize = 5\n# a comment\npair = \"cd:22\"\n  pair=ef:333  \n", &t, &diag),
                 MWL_OK);
    CHECK_EQ_INT(t.size, 5);
    CHECK_EQ_INT(t.pairs.count, 3);
    CHECK_EQ_STR(t.pairs.item[0].name, "ab");
    CHECK_EQ_INT(t.pairs.item[1].number, 22);
    CHECK_EQ_STR(t.pairs.item[2].name, "ef");
    CHECK_EQ_INT(t.pairs.item[2].number, 333);

    /* A second file adds after what the struct holds. */
    CHECK_EQ_INT(parse("pair = gh:4\n", &t, &diag), MWL_OK);
    CHECK_EQ_INT(t.pairs.count, 4);
    CHECK_EQ_STR(t.pairs.item[3].name, "gh");

    /* mwl_config_set appends too, and reset empties the list. */
    mwl_config_init(&toy_table, &t);
    CHECK_EQ_INT(mwl_config_set(&toy_table, &t, "pair", "x:1", &diag), MWL_OK);
    CHECK_EQ_INT(mwl_config_set(&toy_table, &t, "pair", "y:2", &diag), MWL_OK);
    CHECK_EQ_INT(t.pairs.count, 2);
    CHECK_EQ_STR(t.pairs.item[1].name, "y");
    const mwl_config_key *k = mwl_config_find(&toy_table, "pair");
    mwl_config_reset(k, &t);
    CHECK_EQ_INT(t.pairs.count, 0);
    t.size = 9;
    mwl_config_reset(&toy_keys[0], &t);
    CHECK_EQ_INT(t.size, 3);
}

static void test_errors_change_nothing(void)
{
    toy t;
    mwl_config_init(&toy_table, &t);
    mwl_diag diag;
    CHECK_EQ_INT(parse("pair = ab:1\n", &t, &diag), MWL_OK);
    toy before = t;

    /* A bad item: the line, the key, the item's own message. */
    CHECK_EQ_INT(parse("size = 4\npair = cd:2\npair = nonsense\n", &t, &diag), MWL_E_INVALID);
    CHECK(strncmp(diag.msg, "line 3: pair: 'nonsense' is not NAME:NUMBER", 43) == 0);
    CHECK(memcmp(&t, &before, sizeof t) == 0);

    /* An empty value is an error, not "no item". */
    CHECK_EQ_INT(parse("pair = cd:2\npair =\n", &t, &diag), MWL_E_INVALID);
    CHECK(strncmp(diag.msg, "line 2: pair: empty value", 25) == 0);
    CHECK_EQ_INT(parse("pair = \"  \"\n", &t, &diag), MWL_E_INVALID);
    CHECK(memcmp(&t, &before, sizeof t) == 0);

    /* More than max items, counting those already held. */
    CHECK_EQ_INT(parse("pair = b:2\npair = c:3\npair = d:4\npair = e:5\n", &t, &diag), MWL_E_INVALID);
    CHECK(strncmp(diag.msg, "line 4: pair: at most 4", 23) == 0);
    CHECK(memcmp(&t, &before, sizeof t) == 0);
    CHECK_EQ_INT(parse("pair = b:2\npair = c:3\npair = d:4\n", &t, &diag), MWL_OK);
    CHECK_EQ_INT(t.pairs.count, PAIRS_MAX);
    toy full = t;
    CHECK_EQ_INT(mwl_config_set(&toy_table, &t, "pair", "z:9", &diag), MWL_E_INVALID);
    CHECK(memcmp(&t, &full, sizeof t) == 0);

    /* Single-valued keys still may appear only once. */
    mwl_config_init(&toy_table, &t);
    before = t;
    CHECK_EQ_INT(parse("size = 4\npair = a:1\nsize = 5\n", &t, &diag), MWL_E_INVALID);
    CHECK(strncmp(diag.msg, "line 3: 'size' is already set on line 1", 39) == 0);
    CHECK(memcmp(&t, &before, sizeof t) == 0);
}

static void test_format_round_trip(void)
{
    toy t;
    mwl_config_init(&toy_table, &t);
    mwl_diag diag;
    CHECK_EQ_INT(parse("pair = ab:1\npair = cd:22\npair = ab:1\n", &t, &diag), MWL_OK);
    const mwl_config_key *k = mwl_config_find(&toy_table, "pair");
    CHECK_EQ_INT(mwl_config_count(k, &t), 3);
    char out[64];
    CHECK_EQ_INT(mwl_config_format_at(k, &t, 1, out, sizeof out), 5);
    CHECK_EQ_STR(out, "cd:22");
    CHECK_EQ_INT(mwl_config_format_at(k, &t, 3, out, sizeof out), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(mwl_config_format(k, &t, out, sizeof out), 15);
    CHECK_EQ_STR(out, "ab:1\ncd:22\nab:1");
    /* snprintf style: the length needed, a terminated prefix. */
    char small[7];
    CHECK_EQ_INT(mwl_config_format(k, &t, small, sizeof small), 15);
    CHECK_EQ_STR(small, "ab:1\nc");
    CHECK_EQ_INT(mwl_config_format(k, &t, NULL, 0), 15);
    CHECK_EQ_INT(mwl_config_format_at(&toy_keys[0], &t, 0, out, sizeof out), 1);
    CHECK_EQ_STR(out, "3");

    /* Written back line by line, it parses to an equal list; order counts. */
    char text[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < mwl_config_count(k, &t); i++) {
        char item[32];
        mwl_config_format_at(k, &t, i, item, sizeof item);
        used += (size_t)snprintf(text + used, sizeof text - used, "pair = \"%s\"\n", item);
    }
    toy again;
    mwl_config_init(&toy_table, &again);
    CHECK_EQ_INT(parse(text, &again, &diag), MWL_OK);
    CHECK(mwl_config_equal(k, &t, &again));
    again.pairs.item[1].number = 23;
    CHECK(!mwl_config_equal(k, &t, &again));
    again.pairs.item[1].number = 22;
    again.pairs.count = 2;
    CHECK(!mwl_config_equal(k, &t, &again));
    /* Slots past the count do not matter. */
    again.pairs.count = 3;
    t.pairs.item[3].number = 1;
    again.pairs.item[3].number = 2;
    CHECK(mwl_config_equal(k, &t, &again));
}

static void test_aet_check(void)
{
    const char *b = NULL;
    size_t n = 0;
    CHECK(mwl_config_aet_check("  CT 1  ", 8, &b, &n) == NULL);
    CHECK_EQ_INT(n, 4);
    CHECK(b && memcmp(b, "CT 1", 4) == 0);
    CHECK(mwl_config_aet_check("A@B", 3, &b, &n) == NULL);
    CHECK(mwl_config_aet_check("   ", 3, &b, &n) != NULL);
    CHECK(mwl_config_aet_check("ABCDEFGHIJKLMNOPQ", 17, &b, &n) != NULL);
    CHECK(mwl_config_aet_check("A\\B", 3, &b, &n) != NULL);
    CHECK(mwl_config_aet_check("A\tB", 3, &b, &n) != NULL);
}

int main(void)
{
    RUN_TEST(test_defaults_and_hints);
    RUN_TEST(test_every_line_appends);
    RUN_TEST(test_errors_change_nothing);
    RUN_TEST(test_format_round_trip);
    RUN_TEST(test_aet_check);
    return check_report("config_test");
}
