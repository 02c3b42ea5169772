/* dispatch.h - placeholder, being written. */
