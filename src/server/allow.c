/* Access rules (`allow = AE[@ADDRESS[/PREFIX]]`): their syntax and the
 * decision who may associate. Pure functions: the session passes in the
 * calling AE title and the peer's address, and negotiation gets only the
 * verdict (mwl_policy.calling_ae_refused). See server.h for the syntax. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

/* Text after the last '@' that was meant as an address: it holds a '.',
 * ':' or '/' (an IPv4 or IPv6 address, a range, a host name). "ROOM-2" or
 * "B" do not: they may end an AE title. */
static bool address_like(const char *b, const char *e)
{
    for (const char *p = b; p < e; p++)
        if (*p == '.' || *p == ':' || *p == '/')
            return true;
    return false;
}

int mwl_allow_rule_parse(const char *text, mwl_allow_rule *out, mwl_diag *diag)
{
    if (!text || !out)
        return MWL_E_INVALID;
    const char *b = text, *e = text + strlen(text);
    trim(&b, &e);
    if (b == e) {
        mwl_diag_set(diag, 0, 0, "empty rule");
        return MWL_E_INVALID;
    }
    if ((size_t)(e - b) > MWL_ALLOW_RULE_STRLEN) {
        mwl_diag_set(diag, 0, 0, "a rule has at most %d characters", MWL_ALLOW_RULE_STRLEN);
        return MWL_E_INVALID;
    }
    mwl_allow_rule r;
    memset(&r, 0, sizeof r);
    r.any_address = true;
    const char *title_end = e;
    const char *at = NULL;
    for (const char *p = b; p < e; p++)
        if (*p == '@')
            at = p;
    if (at) {
        const char *tb = at + 1, *te = e;
        trim(&tb, &te);
        mwl_diag cidr_diag;
        mwl_diag_clear(&cidr_diag);
        if (te - tb == 1 && *tb == '*') {
            title_end = at;
        } else if (tb == te) {
            mwl_diag_set(diag, 0, 0, "no address after '@' (AE@* is any address)");
            return MWL_E_INVALID;
        } else if (mwl_net_cidr_parse(tb, (size_t)(te - tb), &r.from, &cidr_diag) == MWL_OK) {
            r.any_address = false;
            title_end = at;
        } else if (address_like(tb, te)) {
            mwl_diag_set(diag, 0, 0, "%s", cidr_diag.msg);
            return MWL_E_INVALID;
        }
        /* Otherwise the '@' is part of the title. */
    }
    const char *ae_b = b, *ae_e = title_end;
    trim(&ae_b, &ae_e);
    if (ae_e - ae_b == 1 && *ae_b == '*') {
        r.ae[0] = '\0'; /* any AE title */
    } else {
        const char *tb = NULL;
        size_t n = 0;
        const char *why = mwl_config_aet_check(ae_b, (size_t)(ae_e - ae_b), &tb, &n);
        if (why) {
            mwl_diag_set(diag, 0, 0, "%s", ae_b == ae_e ? "no AE title before '@' (* is any AE)" : why);
            return MWL_E_INVALID;
        }
        memcpy(r.ae, tb, n);
        r.ae[n] = '\0';
    }
    *out = r;
    return MWL_OK;
}

size_t mwl_allow_rule_format(const mwl_allow_rule *r, char *out, size_t cap)
{
    const char *ae = r->ae[0] ? r->ae : "*";
    int n;
    if (!r->any_address) {
        char range[MWL_NET_CIDR_STRLEN];
        mwl_net_cidr_format(&r->from, range, sizeof range);
        n = snprintf(out, cap, "%s@%s", ae, range);
    } else if (strchr(ae, '@')) {
        n = snprintf(out, cap, "%s@*", ae); /* so the title's own '@' is not the split */
    } else {
        n = snprintf(out, cap, "%s", ae);
    }
    return n > 0 ? (size_t)n : 0;
}

bool mwl_allow_rule_equal(const mwl_allow_rule *a, const mwl_allow_rule *b)
{
    if (strcmp(a->ae, b->ae) != 0 || a->any_address != b->any_address)
        return false;
    return a->any_address || mwl_net_cidr_equal(&a->from, &b->from);
}

/* ---- the decision ----------------------------------------------------------- */

/* AE titles: leading and trailing spaces are not significant (PS3.5 AE). */
static bool same_ae(const char *a, const char *b)
{
    const char *ae = a + strlen(a), *be = b + strlen(b);
    while (*a == ' ')
        a++;
    while (ae > a && ae[-1] == ' ')
        ae--;
    while (*b == ' ')
        b++;
    while (be > b && be[-1] == ' ')
        be--;
    return ae - a == be - b && memcmp(a, b, (size_t)(ae - a)) == 0;
}

/* Writes, from out[used], the ranges of the rules that would let
 * calling_ae in (any_ae_rules: only those of the "*" rules), as
 * "10.0.0.0/8, ::1": at most 3, then " and N more". */
static void list_ranges(const mwl_allow_list *rules, const char *calling_ae, bool any_ae_rules, char *out,
                        size_t cap, size_t used)
{
    size_t listed = 0, more = 0;
    for (size_t i = 0; i < rules->count && i < MWL_ALLOW_RULES_MAX; i++) {
        const mwl_allow_rule *r = &rules->rule[i];
        bool wanted = any_ae_rules ? r->ae[0] == '\0' : (r->ae[0] == '\0' || same_ae(r->ae, calling_ae));
        if (!wanted || r->any_address)
            continue;
        if (listed == 3) {
            more++;
            continue;
        }
        char range[MWL_NET_CIDR_STRLEN];
        mwl_net_cidr_format(&r->from, range, sizeof range);
        int n = snprintf(used < cap ? out + used : NULL, used < cap ? cap - used : 0, "%s%s",
                         listed ? ", " : "", range);
        used += n > 0 ? (size_t)n : 0;
        listed++;
    }
    if (more)
        snprintf(used < cap ? out + used : NULL, used < cap ? cap - used : 0, " and %zu more", more);
}

mwl_allow_verdict mwl_allow_check(const mwl_config_aet_list *titles, const mwl_allow_list *rules,
                                  const char *calling_ae, const mwl_net_addr *peer, char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    size_t title_count = titles ? titles->count : 0;
    size_t rule_count = rules ? rules->count : 0;
    if (title_count > MWL_CONFIG_AET_LIST_MAX)
        title_count = MWL_CONFIG_AET_LIST_MAX;
    if (rule_count > MWL_ALLOW_RULES_MAX)
        rule_count = MWL_ALLOW_RULES_MAX;
    if (title_count == 0 && rule_count == 0)
        return MWL_ALLOW_OPEN;
    if (!calling_ae)
        calling_ae = "";
    for (size_t i = 0; i < title_count; i++)
        if (same_ae(titles->aet[i], calling_ae))
            return MWL_ALLOW_ACCEPTED;
    bool named = false, any_ae_ranges = false;
    for (size_t i = 0; i < rule_count; i++) {
        const mwl_allow_rule *r = &rules->rule[i];
        if (r->ae[0] != '\0') {
            if (!same_ae(r->ae, calling_ae))
                continue;
            named = true;
        } else if (!r->any_address) {
            any_ae_ranges = true;
        }
        if (r->any_address || (peer && mwl_net_cidr_contains(&r->from, peer)))
            return MWL_ALLOW_ACCEPTED;
    }
    if (named) {
        int n = snprintf(why, cap, "allowed only from ");
        list_ranges(rules, calling_ae, false, why, cap, n > 0 ? (size_t)n : 0);
        return MWL_ALLOW_WRONG_ADDRESS;
    }
    int n = snprintf(why, cap,
                     any_ae_ranges ? "no rule for this AE title; any AE only from "
                                   : "no rule for this AE title");
    if (any_ae_ranges)
        list_ranges(rules, calling_ae, true, why, cap, n > 0 ? (size_t)n : 0);
    return MWL_ALLOW_UNKNOWN_AE;
}

bool mwl_allow_peer_address(const mwl_allow_list *rules, const char *peer)
{
    if (rules->count == 0)
        return true;
    mwl_net_addr a;
    if (mwl_net_addr_from_peer(peer, &a) != MWL_OK)
        return false;
    for (size_t i = 0; i < rules->count; i++) {
        const mwl_allow_rule *r = &rules->rule[i];
        if (r->any_address || mwl_net_cidr_contains(&r->from, &a))
            return true;
    }
    return false;
}
