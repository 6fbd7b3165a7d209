# gen_prices.awk - data/prices.tsv -> src/import/prices.inc (the price table
# compiled into usage.c). Columns: model, the four prices, the four
# *_above_200k prices, fast; an empty cell is no price. Fails on anything
# that is not a plain decimal number or a model name C can hold as is.
BEGIN { FS = "\t"; n = 0; bad = 0 }
/^#/ || /^[ \t]*$/ { next }
$1 == "model" { next }
{
    if (NF != 10 || $1 ~ /["\\]/ || $1 == "") { print "prices.tsv:" NR ": bad row" > "/dev/stderr"; bad = 1; exit 1 }
    for (i = 2; i <= 10; i++)
        if ($i != "" && $i !~ /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) {
            print "prices.tsv:" NR ": bad number '" $i "'" > "/dev/stderr"; bad = 1; exit 1
        }
    row = "    {\"" $1 "\", {"
    for (i = 2; i <= 5; i++) row = row ($i == "" ? "0" : $i) (i < 5 ? ", " : "}, {")
    for (i = 6; i <= 9; i++) row = row ($i == "" ? "0" : $i) (i < 9 ? ", " : "}, {")
    for (i = 6; i <= 9; i++) row = row ($i == "" ? "false" : "true") (i < 9 ? ", " : "}, ")
    row = row ($10 == "" ? "1" : $10) "},"
    rows[n++] = row
}
END {
    if (bad) exit 1
    if (n == 0) { print "prices.tsv: no rows" > "/dev/stderr"; exit 1 }
    print "/* generated from data/prices.tsv by src/import/gen_prices.awk: do not edit */"
    print "static const at_price price_rows[] = {"
    for (i = 0; i < n; i++) print rows[i]
    print "};"
}
