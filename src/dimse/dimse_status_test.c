/* Status class and meaning tests (PS3.7 Annex C table, PS3.4 Table K.4-1). */
#include <string.h>

#include "check.h"
#include "dimse/dimse.h"

static void test_classes(void)
{
    static const struct {
        uint16_t status;
        mwl_dimse_class cls;
    } cases[] = {
        {0x0000, MWL_DIMSE_CLASS_SUCCESS},
        {0xFF00, MWL_DIMSE_CLASS_PENDING},
        {0xFF01, MWL_DIMSE_CLASS_PENDING},
        {0xFE00, MWL_DIMSE_CLASS_CANCEL},
        {0x0001, MWL_DIMSE_CLASS_WARNING},
        {0x0107, MWL_DIMSE_CLASS_WARNING},
        {0x0116, MWL_DIMSE_CLASS_WARNING},
        {0xB000, MWL_DIMSE_CLASS_WARNING},
        {0xB007, MWL_DIMSE_CLASS_WARNING},
        {0xBFFF, MWL_DIMSE_CLASS_WARNING},
        {0xA700, MWL_DIMSE_CLASS_FAILURE},
        {0xA900, MWL_DIMSE_CLASS_FAILURE},
        {0xA000, MWL_DIMSE_CLASS_FAILURE},
        {0xAFFF, MWL_DIMSE_CLASS_FAILURE},
        {0xC000, MWL_DIMSE_CLASS_FAILURE},
        {0xC001, MWL_DIMSE_CLASS_FAILURE},
        {0xCFFF, MWL_DIMSE_CLASS_FAILURE},
        {0x0100, MWL_DIMSE_CLASS_FAILURE},
        {0x0106, MWL_DIMSE_CLASS_FAILURE},
        {0x0110, MWL_DIMSE_CLASS_FAILURE},
        {0x0122, MWL_DIMSE_CLASS_FAILURE},
        {0x01FF, MWL_DIMSE_CLASS_FAILURE},
        {0x0210, MWL_DIMSE_CLASS_FAILURE},
        {0x0213, MWL_DIMSE_CLASS_FAILURE},
        {0x02FF, MWL_DIMSE_CLASS_FAILURE},
        /* Not in the Annex C table: never success, pending or cancel. */
        {0xFF02, MWL_DIMSE_CLASS_FAILURE},
        {0xFE01, MWL_DIMSE_CLASS_FAILURE},
        {0x0002, MWL_DIMSE_CLASS_FAILURE},
        {0x0300, MWL_DIMSE_CLASS_FAILURE},
        {0xD000, MWL_DIMSE_CLASS_FAILURE},
        {0x9000, MWL_DIMSE_CLASS_FAILURE},
        {0xFFFF, MWL_DIMSE_CLASS_FAILURE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (mwl_dimse_status_class(cases[i].status) != cases[i].cls)
            fprintf(stderr, "status %04X\n", (unsigned)cases[i].status);
        CHECK_EQ_INT(mwl_dimse_status_class(cases[i].status), cases[i].cls);
    }
    CHECK(mwl_dimse_status_is_pending(0xFF00));
    CHECK(mwl_dimse_status_is_pending(0xFF01));
    CHECK(!mwl_dimse_status_is_pending(0xFF02));
    CHECK(!mwl_dimse_status_is_pending(0x0000));

    /* Only the listed codes are success, pending or cancel. */
    size_t success = 0, pending = 0, cancel = 0;
    for (uint32_t s = 0; s <= 0xFFFF; s++) {
        mwl_dimse_class c = mwl_dimse_status_class((uint16_t)s);
        success += c == MWL_DIMSE_CLASS_SUCCESS;
        pending += c == MWL_DIMSE_CLASS_PENDING;
        cancel += c == MWL_DIMSE_CLASS_CANCEL;
    }
    CHECK_EQ_INT(success, 1);
    CHECK_EQ_INT(pending, 2);
    CHECK_EQ_INT(cancel, 1);
}

static void test_meanings(void)
{
    CHECK_EQ_STR(mwl_dimse_status_str(0x0000), "Success");
    CHECK_EQ_STR(mwl_dimse_status_str(0xA900), "Error: Identifier does not match SOP class");
    CHECK_EQ_STR(mwl_dimse_status_str(0xA700), "Refused: Out of resources");
    CHECK_EQ_STR(mwl_dimse_status_str(0xFE00), "Matching terminated due to Cancel request");
    CHECK_EQ_STR(mwl_dimse_status_str(0x0122), "Refused: SOP class not supported");
    CHECK_EQ_STR(mwl_dimse_status_str(0x0211), "Unrecognized operation");
    /* PS3.4 K.4.1.2: any Cxxx is "unable to process". */
    CHECK_EQ_STR(mwl_dimse_status_str(0xC000), "Failed: Unable to process");
    CHECK_EQ_STR(mwl_dimse_status_str(0xC123), "Failed: Unable to process");
    CHECK_EQ_STR(mwl_dimse_status_str(0xCFFF), "Failed: Unable to process");
    CHECK(strstr(mwl_dimse_status_str(0xFF00), "continuing") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xFF01), "optional keys were not supported") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xA701), "Out of resources") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xB000), "Warning") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xB123), "Warning") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xA123), "Failure") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xD000), "Unknown") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0xFF02), "Unknown") != NULL);
    CHECK(strstr(mwl_dimse_status_str(0x01FF), "not defined") != NULL);
    for (uint32_t s = 0; s <= 0xFFFF; s++) {
        const char *m = mwl_dimse_status_str((uint16_t)s);
        if (!m || !m[0]) {
            CHECK(m && m[0]);
            break;
        }
    }
    CHECK_EQ_STR(mwl_dimse_class_str(MWL_DIMSE_CLASS_PENDING), "Pending");
    CHECK_EQ_STR(mwl_dimse_class_str(MWL_DIMSE_CLASS_FAILURE), "Failure");
    CHECK_EQ_STR(mwl_dimse_class_str(MWL_DIMSE_CLASS_CANCEL), "Cancel");
}

int main(void)
{
    RUN_TEST(test_classes);
    RUN_TEST(test_meanings);
    return check_report("dimse_status_test");
}
