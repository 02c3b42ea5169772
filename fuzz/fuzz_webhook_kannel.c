/*
 * fuzz_webhook_kannel.c - libFuzzer target: Kannel's webhooks, through
 * the adapter contract (adapters/adapter.h): verify, parse_inbound,
 * parse_status and reply_body of a sender with a webhook secret (GET and POST,
 * DLRs), on any request the webhook layer can hand over (input format:
 * fuzz_util.h). Seeds: fuzz/corpus/fuzz_webhook_kannel/, made from
 * tests/fixtures/kannel/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz_util.h"

#define FZKN_PUBLIC "https://gw.example.org"

/* The secret of the fixtures' queries (see tests/unit/check_kannel.c). */
static const char fzkn_conf[] =
    "[sender k1]\nprovider = kannel\nfrom = +14155550199\n"
    "username = kuser\npassword = p@ss w&rd\n"
    "webhook_secret = s3cret-Token_0123456789\n";

static struct fuzz_sender fzkn_senders[] = {
    {.name = "k1", .now = INT64_C(1795749274000)},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_webhook_input(fzkn_conf, FZKN_PUBLIC, fzkn_senders,
	    sizeof(fzkn_senders) / sizeof(fzkn_senders[0]), data, size);
	return 0;
}
