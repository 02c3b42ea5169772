/*
 * ctl_import.c - outreachctl import.
 * (Placeholder: filled in by the import work of issue 4.)
 */
#include "autoconf.h"

#include "ctl.h"

const char ctl_help_import[] = "Not yet implemented.\n";

int
ctl_cmd_import(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argc;
	(void)argv;
	return ctl_usage_error("import", "not yet implemented");
}
