/*
 * fuzz_webhook_vonage.c - libFuzzer target: Vonage's webhooks, through
 * the adapter contract (adapters/adapter.h): verify, parse_inbound,
 * parse_status and reply_body of three senders: api-key checks only, an md5hash
 * signature secret, and an HMAC-SHA256 one (the JSON webhooks), on any request
 * the webhook layer can hand over (input format: fuzz_util.h). Seeds:
 * fuzz/corpus/fuzz_webhook_vonage/, made from tests/fixtures/vonage/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz_util.h"

#define FZVN_PUBLIC "https://gw.example.org"

/* The secrets of the signed fixtures (see tests/unit/check_vonage.c). */
static const char fzvn_conf[] =
    "[sender v1]\nprovider = vonage\nfrom = +14155550199\n"
    "api_key = KEY\napi_secret = SECRET\n"
    "[sender v2]\nprovider = vonage\nfrom = +14155550199\n"
    "api_key = KEY\napi_secret = SECRET\n"
    "signature_secret = my_secret_key_for_testing\n"
    "[sender v3]\nprovider = vonage\nfrom = +14155550199\n"
    "api_key = KEY\napi_secret = SECRET\n"
    "signature_secret = json-signing-secret\nsignature_method = sha256\n";

/* The clocks the fixtures were signed at: the PHP SDK's vector and
 * inbound-json-signed.json's timestamp. */
static struct fuzz_sender fzvn_senders[] = {
    {.name = "v1", .now = INT64_C(1491346667000)},
    {.name = "v2", .now = INT64_C(1491346677000)},
    {.name = "v3", .now = INT64_C(1795749274000)},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_webhook_input(fzvn_conf, FZVN_PUBLIC, fzvn_senders,
	    sizeof(fzvn_senders) / sizeof(fzvn_senders[0]), data, size);
	return 0;
}
