/* check_suites.h - placeholder, being written. */
