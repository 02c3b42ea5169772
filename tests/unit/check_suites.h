/*
 * check_suites.h - the Check suites that check_main.c runs. Each
 * tests/unit/check_<module>.c defines one <module>_suite().
 */
#ifndef OD_CHECK_SUITES_H
#define OD_CHECK_SUITES_H

#include <check.h>

Suite *config_suite(void);
Suite *console_suite(void);
Suite *conversations_suite(void);
Suite *csv_suite(void);
Suite *email_addr_suite(void);
Suite *email_links_suite(void);
Suite *events_suite(void);
Suite *file_email_suite(void);
Suite *fileutil_suite(void);
Suite *httpclient_suite(void);
Suite *inbound_suite(void);
Suite *json_flat_suite(void);
Suite *kannel_suite(void);
Suite *links_pg_suite(void);
Suite *imports_pg_suite(void);
Suite *lists_pg_suite(void);
Suite *alerts_pg_suite(void);
Suite *conversations_pg_suite(void);
Suite *members_suite(void);
Suite *mime_suite(void);
Suite *notify_pg_suite(void);
Suite *pg_suite(void);
Suite *pg_migrate_suite(void);
Suite *pg_queue_suite(void);
Suite *queue_pg_suite(void);
Suite *phone_suite(void);
Suite *plivo_suite(void);
Suite *queue_suite(void);
Suite *queue_async_suite(void);
Suite *quiet_suite(void);
Suite *ratelimit_suite(void);
Suite *schema_suite(void);
Suite *smstext_suite(void);
Suite *smtp_suite(void);
Suite *staff_suite(void);
Suite *store_alerts_suite(void);
Suite *store_pg_suite(void);
Suite *telnyx_suite(void);
Suite *template_suite(void);
Suite *twilio_suite(void);
Suite *vonage_suite(void);
Suite *workq_suite(void);

#endif
