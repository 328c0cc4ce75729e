/* Fuzz target for access rules (`allow = AE[@ADDRESS[/PREFIX]]`,
 * src/server/allow.c) and the address ranges under them (src/net/addr.c).
 *
 * Parses arbitrary text as a rule. On success the rule must be well formed
 * (a trimmed title of 1..16 characters or "*", a range without bits past
 * its prefix), its text form must parse back to an equal rule and format
 * to the same text, and deciding with it must agree with the range: the
 * rule lets its own AE in from the range's first address. The same text
 * also goes through the range and peer-address parsers, whose results
 * must round-trip too. Never crashes; any disagreement aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_allow: %s: '%s'\n", what, text);
    abort();
}

static void check_range(const mwl_net_cidr *c, const char *text)
{
    unsigned bits = c->addr.family == 4 ? 32u : 128u;
    if ((c->addr.family != 4 && c->addr.family != 6) || c->prefix > bits)
        fail("bad range", text);
    char out[MWL_NET_CIDR_STRLEN];
    size_t n = mwl_net_cidr_format(c, out, sizeof out);
    if (n >= sizeof out)
        fail("range text too long", text);
    mwl_net_cidr again;
    if (mwl_net_cidr_parse(out, n, &again, NULL) != MWL_OK || !mwl_net_cidr_equal(c, &again))
        fail("range does not round-trip", out);
    if (!mwl_net_cidr_contains(c, &c->addr))
        fail("range does not hold its own address", out);
}

static void check_rule(const mwl_allow_rule *r, const char *text)
{
    size_t n = strnlen(r->ae, sizeof r->ae);
    if (n == sizeof r->ae || (n && (r->ae[0] == ' ' || r->ae[n - 1] == ' ')))
        fail("bad title", text);
    if (!r->any_address)
        check_range(&r->from, text);

    char out[MWL_ALLOW_RULE_STRLEN + 1];
    size_t len = mwl_allow_rule_format(r, out, sizeof out);
    if (len >= sizeof out)
        fail("rule text too long", text);
    mwl_allow_rule again;
    mwl_diag diag;
    if (mwl_allow_rule_parse(out, &again, &diag) != MWL_OK) {
        fprintf(stderr, "%s\n", diag.msg);
        fail("formatted rule does not parse", out);
    }
    if (!mwl_allow_rule_equal(r, &again))
        fail("rule does not round-trip", out);
    char out2[MWL_ALLOW_RULE_STRLEN + 1];
    mwl_allow_rule_format(&again, out2, sizeof out2);
    if (strcmp(out, out2) != 0)
        fail("formatting is not stable", out);

    /* The rule alone lets its own AE in from its own range. */
    mwl_allow_list *list = calloc(1, sizeof *list);
    if (!list)
        return;
    list->rule[0] = *r;
    list->count = 1;
    const char *ae = r->ae[0] ? r->ae : "ANYONE";
    char why[128];
    if (mwl_allow_check(NULL, list, ae, r->any_address ? NULL : &r->from.addr, why, sizeof why) !=
        MWL_ALLOW_ACCEPTED)
        fail("rule refuses its own AE and address", out);
    /* And an AE no rule names is refused unless the rule is for any AE. */
    mwl_allow_verdict v = mwl_allow_check(NULL, list, "  ", NULL, why, sizeof why);
    if (r->ae[0] && v != MWL_ALLOW_UNKNOWN_AE)
        fail("an AE no rule names was not refused as unknown", out);
    free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0; /* a config line is at most 4096 bytes */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    mwl_allow_rule r;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_allow_rule_parse(text, &r, &diag);
    if (rc == MWL_OK)
        check_rule(&r, text);
    else if (rc != MWL_E_INVALID || !diag.msg[0])
        fail("error without a message", text);

    /* The same bytes as a range (with its exact length: NULs included) and
     * as a peer. */
    mwl_net_cidr c;
    if (mwl_net_cidr_parse((const char *)data, size, &c, NULL) == MWL_OK)
        check_range(&c, text);
    mwl_net_addr a;
    if (mwl_net_addr_from_peer(text, &a) == MWL_OK) {
        mwl_net_cidr host = {a, (uint8_t)(a.family == 4 ? 32 : 128)};
        check_range(&host, text);
    }
    free(text);
    return 0;
}
