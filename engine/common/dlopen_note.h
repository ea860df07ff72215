/* A library loaded with dlopen, named for packagers: an ELF note in the
 * format of the freedesktop "dlopen metadata" spec (section .note.dlopen,
 * owner "FDO", type 0x407c0c0a, a NUL-terminated JSON array of {"soname":
 * [...], "feature", "description", "priority"}), which scripts/package.sh
 * and tests/package/elf_check.py read as if it were a DT_NEEDED entry.
 * Use once per library, at file scope. */
#ifndef FANOUT_DLOPEN_NOTE_H
#define FANOUT_DLOPEN_NOTE_H

#include <stdint.h>

#define FANOUT_DLOPEN_NOTE(ident, feature, description, soname)                            \
    __attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {       \
        uint32_t name_size, desc_size, type;                                               \
        char name[4];                                                                      \
        char desc[(sizeof FANOUT_DLOPEN_JSON(feature, description, soname) + 3) &          \
                  ~(size_t)3];                                                             \
    } ident = {4,                                                                          \
               (sizeof FANOUT_DLOPEN_JSON(feature, description, soname) + 3) & ~(size_t)3, \
               0x407c0c0a, "FDO", FANOUT_DLOPEN_JSON(feature, description, soname)}

#define FANOUT_DLOPEN_JSON(feature, description, soname)                                   \
    "[{\"feature\":\"" feature "\",\"description\":\"" description                         \
    "\",\"priority\":\"required\",\"soname\":[\"" soname "\"]}]"

#endif
