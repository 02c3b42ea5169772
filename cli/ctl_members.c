/*
 * ctl_members.c - outreachctl members, lists and export.
 * (Placeholder: filled in by the members work of issue 4.)
 */
#include "autoconf.h"

#include "ctl.h"

const char ctl_help_members[] = "Not yet implemented.\n";
const char ctl_help_lists[] = "Not yet implemented.\n";
const char ctl_help_export[] = "Not yet implemented.\n";

int
ctl_cmd_members(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argc;
	(void)argv;
	return ctl_usage_error("members", "not yet implemented");
}

int
ctl_cmd_lists(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argc;
	(void)argv;
	return ctl_usage_error("lists", "not yet implemented");
}

int
ctl_cmd_export(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	(void)argc;
	(void)argv;
	return ctl_usage_error("export", "not yet implemented");
}
