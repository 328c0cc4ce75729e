/* MWL_API marks what libmwl exports. The library is built with hidden
 * visibility, so a function or variable without the marker stays internal
 * to libmwl.so (and to the static library's users it changes nothing).
 * Every declaration in a public header carries it: scripts/mark_api.py adds
 * it, and scripts/check_exports.py (CTest libmwl_exports) checks what the
 * shared library exports against the headers. */
#ifndef MWL_BASE_API_H
#define MWL_BASE_API_H

#if defined(__GNUC__) || defined(__clang__)
#define MWL_API __attribute__((visibility("default")))
#else
#define MWL_API
#endif

#endif
