/*
 * ascii.h -- character helpers that do not depend on the locale (the
 * <ctype.h> ones do), for parsers of wire and file formats: the HTTP
 * scanners and the JSON position finder.  Header only.
 */
#ifndef COWLAB_ASCII_H
#define COWLAB_ASCII_H

/* The value of hex digit ch (0-9, a-f, A-F), or -1 for any other int
 * (EOF and bytes above 0x7f included). */
static inline int
ascii_hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

#endif /* COWLAB_ASCII_H */
