#!/bin/bash
# install.sh - `make install` into a temporary DESTDIR: the program, the
# library and its headers, agenttrace.pc, the systemd unit and the man page
# land where they belong, a program built against the installed library
# through pkg-config runs, and the man page renders.
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s -C "$top_builddir" install DESTDIR="$dest" > "$dest/install.log" 2>&1
check "make install DESTDIR=... succeeds" test $? -eq 0 || sed 's/^/#   /' "$dest/install.log" | tail -20
pc="$top_builddir/packaging/agenttrace.pc"
prefix=$(pkg-config --variable=prefix "$pc")
libdir=$(pkg-config --variable=libdir "$pc")
root=$dest$prefix
check "the program is installed and runs (--version)" "$root/bin/agent-traced" --version
check "libagenttrace.a is installed" test -f "$dest$libdir/libagenttrace.a"
check "the public headers are installed" test -f "$root/include/agenttrace/store.h" -a -f "$root/include/agenttrace/json.h"
check "agenttrace.pc is installed" test -f "$dest$libdir/pkgconfig/agenttrace.pc"
unit="$root/lib/systemd/system/agent-traced.service"
check "the systemd unit is installed, running $prefix/bin/agent-traced" grep -q "^ExecStart=$prefix/bin/agent-traced serve" "$unit"
check "the man page is installed" test -f "$root/share/man/man1/agent-traced.1"
if command -v groff > /dev/null; then
    out=$(groff -man -Tutf8 -ww -z "$root/share/man/man1/agent-traced.1" 2>&1)
    check "the man page renders without a warning${out:+: $out}" test -z "$out"
    missing=""
    for c in import verify serve witness gc log keygen reindex; do
        grep -q "^\.SH COMMAND: ${c^^}\$" "$root/share/man/man1/agent-traced.1" || missing="$missing $c"
    done
    check "the man page describes every command${missing:+ (missing:$missing)}" test -z "$missing"
fi
cat > "$dest/use.c" <<'C'
#include <agenttrace/json.h>
#include <agenttrace/sha256.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    uint8_t d[AT_SHA256_LEN];
    char hex[AT_SHA256_HEX];
    at_sha256_oneshot("abc", 3, d);
    at_hex(d, sizeof d, hex);
    at_json_doc doc;
    at_json_doc_init(&doc);
    int ok = at_json_parse(&doc, "{\"a\": [1, 2.5e3]}", 17, NULL) == AT_OK;
    at_json_doc_fini(&doc);
    printf("%s %d\n", hex, ok);
    return 0;
}
C
flags=$(PKG_CONFIG_PATH="$dest$libdir/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags --libs agenttrace 2>&1)
check "pkg-config --cflags --libs agenttrace${flags:+ ($flags)}" test -n "$flags"
# shellcheck disable=SC2086
# (a sanitizer build's library needs the sanitizer runtimes linked too)
# shellcheck disable=SC2086
${CC:-cc} -o "$dest/use" "$dest/use.c" $flags ${AT_BUILD_LDFLAGS:-} > "$dest/cc.log" 2>&1
check "a program builds against the installed library with those flags" test -x "$dest/use"
[ -x "$dest/use" ] || sed "s/^/#   /" "$dest/cc.log" | head -20
check "... and runs: SHA-256 and the JSON parser" test "$("$dest/use")" = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad 1"
finish install
