#include <string.h>

#include "check.h"
#include "dicom/dataset.h"
#include "dicom/dict.h"

static void test_dict_lookup(void)
{
    const mwl_dict_entry *e = mwl_dict_find(MWL_TAG_PatientName);
    CHECK(e && e->vr == MWL_VR_PN && strcmp(e->keyword, "PatientName") == 0);
    e = mwl_dict_find(MWL_TAG(0x0040, 0x0100));
    CHECK(e && e->vr == MWL_VR_SQ && strcmp(e->keyword, "ScheduledProcedureStepSequence") == 0);
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x0000, 0x0100)), MWL_VR_US); /* CommandField */
    /* repeating groups */
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x6002, 0x3000)), MWL_VR_OW); /* OverlayData, "OB or OW" */
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x5010, 0x0005)), mwl_dict_vr(MWL_TAG(0x5000, 0x0005)));
    CHECK_EQ_STR(mwl_dict_keyword(MWL_TAG(0x601E, 0x0010)), "OverlayRows");
    CHECK_EQ_STR(mwl_dict_keyword(MWL_TAG(0x1000, 0x1234)), "ShiftTableSize");
    /* private */
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x0009, 0x0010)), MWL_VR_LO);
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x0009, 0x1001)), MWL_VR_UN);
    CHECK(mwl_dict_find(MWL_TAG(0x6001, 0x3000)) == NULL);
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x0008, 0x0000)), MWL_VR_UL);
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG(0x0010, 0x9999)), MWL_VR_UN);
    CHECK_EQ_INT(mwl_dict_vr(MWL_TAG_ITEM), MWL_VR_NONE);
    /* keywords */
    e = mwl_dict_find_keyword("ScheduledStationAETitle");
    CHECK(e && e->tag == MWL_TAG(0x0040, 0x0001));
    CHECK(mwl_dict_find_keyword("NoSuchKeyword") == NULL);
    CHECK(mwl_dict_find_keyword("") == NULL);
}

static void test_uids(void)
{
    const mwl_uid_entry *u = mwl_uid_find(MWL_UID_ModalityWorklistInformationModelFind);
    CHECK(u && strcmp(u->type, "SOP Class") == 0);
    u = mwl_uid_find("1.2.840.10008.1.2.1");
    CHECK(u && strcmp(u->keyword, "ExplicitVRLittleEndian") == 0);
    CHECK(mwl_uid_find("1.2.3") == NULL);
}

static void test_vr(void)
{
    CHECK_EQ_INT(mwl_vr_from_code((const uint8_t *)"PN"), MWL_VR_PN);
    CHECK_EQ_INT(mwl_vr_from_code((const uint8_t *)"ZZ"), MWL_VR_NONE);
    CHECK_EQ_INT(mwl_vr_from_code((const uint8_t *)"\0\0"), MWL_VR_NONE);
    CHECK(mwl_vr_get_info(MWL_VR_SQ)->long_form);
    CHECK(!mwl_vr_get_info(MWL_VR_PN)->long_form);
    CHECK_EQ_INT(mwl_vr_get_info(MWL_VR_UI)->pad, 0);
    CHECK_EQ_STR(mwl_vr_code((mwl_vr)200), "");
}

static void test_dataset(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &ds), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, 0, "Doe^John"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, 0, "12345"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, 0, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, 0, "1.2.3"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, " CT01 \\CT02"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_count(ds), 5);
    CHECK_EQ_INT(mwl_ds_at(ds, 0)->tag, MWL_TAG_SpecificCharacterSet);
    const mwl_elem *e = mwl_ds_find(ds, MWL_TAG_PatientID);
    CHECK(e && e->length == 6 && e->value[5] == ' ');
    e = mwl_ds_find(ds, MWL_TAG_StudyInstanceUID);
    CHECK(e && e->length == 6 && e->value[5] == 0);
    char buf[64];
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_StudyInstanceUID, 0, buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "1.2.3");
    e = mwl_ds_find(ds, MWL_TAG_ScheduledStationAETitle);
    CHECK_EQ_INT(mwl_elem_vm(e), 2);
    CHECK_EQ_INT(mwl_elem_copy_str(e, 0, buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "CT01");
    CHECK_EQ_INT(mwl_elem_copy_str(e, 1, buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "CT02");
    CHECK_EQ_INT(mwl_elem_copy_str(e, 2, buf, sizeof buf), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_elem_copy_str(e, 0, buf, 3), MWL_E_LIMIT);

    mwl_ds *item;
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_Modality, 0, "CT"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK(mwl_ds_parent(item) == ds);
    e = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(e && e->item_count == 3 && mwl_elem_vm(e) == 3);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_PatientID, &item), MWL_E_INVALID);

    CHECK_EQ_INT(mwl_ds_set_u16(ds, MWL_TAG(0x0028, 0x0010), 512), MWL_OK);
    int64_t v;
    CHECK_EQ_INT(mwl_elem_get_int(mwl_ds_find(ds, MWL_TAG(0x0028, 0x0010)), 0, &v), MWL_OK);
    CHECK_EQ_INT(v, 512);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0020, 0x0013), 0, " -42 "), MWL_OK); /* IS */
    CHECK_EQ_INT(mwl_elem_get_int(mwl_ds_find(ds, MWL_TAG(0x0020, 0x0013)), 0, &v), MWL_OK);
    CHECK_EQ_INT(v, -42);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0018, 0x0050), 0, "1.5\\x"), MWL_OK); /* DS */
    double d;
    CHECK_EQ_INT(mwl_elem_get_double(mwl_ds_find(ds, MWL_TAG(0x0018, 0x0050)), 0, &d), MWL_OK);
    CHECK(d == 1.5);
    CHECK_EQ_INT(mwl_elem_get_double(mwl_ds_find(ds, MWL_TAG(0x0018, 0x0050)), 1, &d), MWL_E_MALFORMED);

    mwl_ds *copy;
    CHECK_EQ_INT(mwl_ds_copy(ds, &a, NULL, &copy), MWL_OK);
    CHECK(mwl_ds_equal(ds, copy));
    CHECK_EQ_INT(mwl_ds_remove(copy, MWL_TAG_PatientID), MWL_OK);
    CHECK_EQ_INT(mwl_ds_remove(copy, MWL_TAG_PatientID), MWL_E_NOTFOUND);
    CHECK(!mwl_ds_equal(ds, copy));

    /* many out-of-order inserts stay sorted */
    mwl_ds *big;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &big), MWL_OK);
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t tag = MWL_TAG(0x0011, (i * 7919u) % 1000u + 0x1000u);
        CHECK_EQ_INT(mwl_ds_set(big, tag, MWL_VR_UN, &i, sizeof i), MWL_OK);
    }
    CHECK_EQ_INT(mwl_ds_count(big), 1000);
    int sorted = 1;
    for (size_t i = 1; i < mwl_ds_count(big); i++)
        sorted &= mwl_ds_at(big, i - 1)->tag < mwl_ds_at(big, i)->tag;
    CHECK(sorted);
    mwl_arena_clear(&a);
}

int main(void)
{
    RUN_TEST(test_dict_lookup);
    RUN_TEST(test_uids);
    RUN_TEST(test_vr);
    RUN_TEST(test_dataset);
    return check_report("dict_test");
}
