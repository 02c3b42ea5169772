/* fakeprov.c - placeholder: the fake SMS provider is being written. */
#include "autoconf.h"

int main(void);

int
main(void)
{
	return 1;
}
