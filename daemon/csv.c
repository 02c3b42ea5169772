/*
 * csv.c - incremental CSV reader. Placeholder (issue 4).
 */
#include "autoconf.h"

#include "csv.h"
