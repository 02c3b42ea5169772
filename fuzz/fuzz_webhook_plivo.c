/*
 * fuzz_webhook_plivo.c - libFuzzer target: Plivo's webhooks, through
 * the adapter contract (adapters/adapter.h): verify, parse_inbound,
 * parse_status and reply_body of a sender with an auth token (V2 and V3
 * signatures), on any request the webhook layer can hand over (input format:
 * fuzz_util.h). Seeds: fuzz/corpus/fuzz_webhook_plivo/, made from
 * tests/fixtures/plivo/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz_util.h"

#define FZPL_PUBLIC "https://gw.example.org"

/* The token tests/fixtures/plivo/make-v3-vectors.py signs with. */
static const char fzpl_conf[] =
    "[sender p1]\nprovider = plivo\nfrom = +14155550199\n"
    "auth_id = MAXXXXXXXXXXXXXXXXXX\nauth_token = plivo-test-auth-token\n";

static struct fuzz_sender fzpl_senders[] = {
    {.name = "p1", .now = INT64_C(1795749274000)},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_webhook_input(fzpl_conf, FZPL_PUBLIC, fzpl_senders,
	    sizeof(fzpl_senders) / sizeof(fzpl_senders[0]), data, size);
	return 0;
}
