/*
 * check_util.h - small helpers the unit suites share.
 */
#ifndef OD_CHECK_UTIL_H
#define OD_CHECK_UTIL_H

/* Removes dir and everything below it (best effort; test scratch only). */
void cku_rmtree(const char *dir);

#endif
