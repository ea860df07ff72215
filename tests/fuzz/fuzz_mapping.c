/* Mapping files (engine/core/mapping.c): a file's bytes through the parser and
 * validator the file store uses.
 *
 * Checks, beyond ASan and UBSan: a usable document accounts for every
 * mapping (kept, or a problem that names it); a refused document says why;
 * every kept mapping has its required fields, a plugin type that is a
 * name and never a path, booleans that are 0 or 1, a known collapse mode,
 * no duplicate (sourceArn, id), and plugin options without schema fields. */
#include <string.h>

#include "fuzz.h"
#include "core/mapping.h"
#include "common/util.h"

static void s_check_mapping(const struct fanout_mapping *m)
{
    FUZZ_CHECK(m->source_arn && m->id && m->type && m->destination, "required field NULL");
    FUZZ_CHECK(strncmp(m->source_arn, "arn:", 4) == 0, "sourceArn \"%s\"", m->source_arn);
    FUZZ_CHECK(fanout_valid_type_name(m->type), "type \"%s\"", m->type);
    FUZZ_CHECK(!strchr(m->type, '/') && strcmp(m->type, "..") != 0, "type is a path");
    FUZZ_CHECK(m->active == 0 || m->active == 1, "active %d", m->active);
    FUZZ_CHECK(m->parallel == 0 || m->parallel == 1, "parallel %d", m->parallel);
    FUZZ_CHECK(m->convert_ddb == 0 || m->convert_ddb == 1, "convertDDB");
    FUZZ_CHECK(m->deaggregate == 0 || m->deaggregate == 1, "deaggregate");
    FUZZ_CHECK(m->collapse >= -1 && m->collapse <= 3, "collapse %d", m->collapse);
    FUZZ_CHECK(!m->external_id || m->role, "externalId without role");
    FUZZ_CHECK(json_is_object(m->json) && json_is_object(m->extra), "json/extra");
    for (const char *const *f = fanout_mapping_fields; *f; f++)
        FUZZ_CHECK(json_object_get(m->extra, *f) == NULL, "schema field %s among options",
                   *f);
    /* the strings point into the mapping's own copy */
    FUZZ_CHECK(m->source_arn == json_string_value(json_object_get(m->json, "sourceArn")),
               "sourceArn not owned");
    FUZZ_CHECK(m->type == json_string_value(json_object_get(m->json, "type")),
               "type not owned");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct fanout_mapping_set set;
    char err[1024];
    err[0] = 0;
    if (fanout_mapping_set_parse((const char *)data, size, "fuzz.json", &set, err,
                                 sizeof err) != 0) {
        FUZZ_CHECK(err[0], "document refused without a reason");
        FUZZ_CHECK(set.count == 0 && set.problem_count == 0, "refused but filled");
        return 0;
    }
    json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    size_t n = json_array_size(root);
    FUZZ_CHECK(set.count + set.problem_count == n, "%zu mappings: %zu kept, %zu problems",
               n, set.count, set.problem_count);
    json_decref(root);
    for (size_t i = 0; i < set.count; i++) {
        s_check_mapping(set.items[i]);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(set.items[i]->source_arn, set.items[j]->source_arn) != 0 ||
                           strcmp(set.items[i]->id, set.items[j]->id) != 0,
                       "duplicate mapping kept");
    }
    for (size_t i = 0; i < set.problem_count; i++)
        FUZZ_CHECK(set.problems[i] && strstr(set.problems[i], "mapping"),
                   "problem \"%s\" does not name the mapping", set.problems[i]);
    fanout_mapping_set_clean_up(&set);
    return 0;
}
