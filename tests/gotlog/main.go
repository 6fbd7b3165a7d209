// Command gotlog checks agent-traced's transparency log with Go's
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog: every signature,
// hash, inclusion proof and consistency proof is checked by that code, not ours
// (tests/log_go.sh drives it; see README.md).
//
//	gotlog checkpoint VKEY FILE
//	    note.Open the signed checkpoint FILE with VKEY and parse it (c2sp
//	    tlog-checkpoint); prints "<origin> <size> <base64 root>".
//	gotlog proof VKEY PROOFFILE EVENTSFILE SESSIONID VERSION
//	    checks a c2sp tlog-proof@v1 file: its checkpoint's signature (note.Open),
//	    then tlog.CheckRecord of the entry rebuilt from EVENTSFILE, SESSIONID and
//	    VERSION; prints "ok index I size N events E head H object O".
//	gotlog proofs VKEY BATCHFILE
//	    proof for every line "PROOFFILE\tEVENTSFILE\tSESSIONID %-escaped\tVERSION"
//	    of BATCHFILE, in one process: one line each, "ok ..." or "fail <reason>".
//	gotlog tiles URL VKEY OLDCHECKPOINT NEWCHECKPOINT
//	    reads the tree of NEWCHECKPOINT from URL/log/tile/... (URL may also be a
//	    directory holding a copy: DIR/log/tile/...) through
//	    tlog.TileHashReader: every entry (from the entry bundles) is checked
//	    against the level-0 hashes and proved with ProveRecord/CheckRecord, and
//	    ProveTree/CheckTree proves NEWCHECKPOINT consistent with OLDCHECKPOINT.
//	gotlog list URL
//	    one line per version of every session: "<id, every byte outside
//	    [A-Za-z0-9._~-] as %XX> <version> <events> <events_sha256> <head or ->",
//	    from GET /sessions and GET /sessions/{id}/versions.
//	gotlog pyjson SESSIONID
//	    prints SESSIONID as Python's json.dumps writes it (ensure_ascii).
//
// VKEY is a verifier key or a file holding one. Exit status: 0 when the check
// passes, 1 with the reason on stderr when it fails, 2 on a usage error.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "checkpoint":
		need(args, 2)
		err = cmdCheckpoint(args[0], args[1])
	case "proof":
		need(args, 5)
		err = cmdProof(args[0], args[1], args[2], args[3], args[4])
	case "proofs":
		need(args, 2)
		err = cmdProofs(args[0], args[1])
	case "tiles":
		need(args, 4)
		err = cmdTiles(args[0], args[1], args[2], args[3])
	case "list":
		need(args, 1)
		err = cmdList(args[0])
	case "pyjson":
		need(args, 1)
		var s string
		if s, err = pyJSON(args[0]); err == nil {
			fmt.Println(s)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotlog:", err)
		os.Exit(1)
	}
}

func need(args []string, n int) {
	if len(args) != n {
		usage()
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: gotlog checkpoint VKEY FILE
       gotlog proof VKEY PROOFFILE EVENTSFILE SESSIONID VERSION
       gotlog proofs VKEY BATCHFILE
       gotlog tiles URL VKEY OLDCHECKPOINT NEWCHECKPOINT
       gotlog list URL
       gotlog pyjson SESSIONID
`)
	os.Exit(2)
}

// ---- checkpoints ----------------------------------------------------------------

// readKey returns the verifier key arg, or the contents of the file arg names.
func readKey(arg string) string {
	if st, err := os.Stat(arg); err == nil && st.Mode().IsRegular() {
		if b, err := os.ReadFile(arg); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return arg
}

// decimal parses a c2sp decimal: digits only, no leading zeros.
func decimal(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("bad decimal %q", s)
	}
	return n, nil
}

// hash64 decodes the base64 of a 32-byte hash, refusing non-canonical forms.
func hash64(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("bad base64 hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}

// openCheckpoint verifies the signed note msg with the verifier key vkey
// (note.Open) and parses its text as a c2sp.org/tlog-checkpoint. The x/mod
// tlog.ParseTree reads go.sum's older form (no origin line), so the parsing is
// done here: origin, size, base64 root, then optional extension lines.
func openCheckpoint(vkey string, msg []byte) (string, tlog.Tree, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint signature: %v", err)
	}
	good := false
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			good = true
		}
	}
	if !good {
		return "", tlog.Tree{}, errors.New("checkpoint: no signature by the log's key")
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint: %d lines, want at least 3", len(lines))
	}
	origin := lines[0]
	if origin == "" || origin != v.Name() {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint: origin %q is not the key's name %q", origin, v.Name())
	}
	size, err := decimal(lines[1])
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint: size: %v", err)
	}
	root, err := hash64(lines[2])
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint: root: %v", err)
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return "", tlog.Tree{}, errors.New("checkpoint: empty extension line")
		}
	}
	return origin, tlog.Tree{N: size, Hash: root}, nil
}

func cmdCheckpoint(vkeyArg, file string) error {
	msg, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	origin, tree, err := openCheckpoint(readKey(vkeyArg), msg)
	if err != nil {
		return err
	}
	// The root of the empty tree is SHA-256("").
	if tree.N == 0 && tree.Hash != tlog.Hash(sha256.Sum256(nil)) {
		return errors.New("checkpoint: size 0 with a root other than SHA-256(\"\")")
	}
	fmt.Printf("%s %d %s\n", origin, tree.N, base64.StdEncoding.EncodeToString(tree.Hash[:]))
	return nil
}

// ---- entries --------------------------------------------------------------------

// pyJSON writes s (WTF-8: UTF-8 that may hold lone surrogates) the way Python's
// json.dumps(s) does with ensure_ascii (its default): \" \\ \n \r \t \b \f,
// every other byte outside 0x20..0x7e as \uXXXX (lowercase hex), code points
// above U+FFFF as surrogate pairs. Go's json.Marshal escapes <, >, & and
// U+2028/9 and keeps other non-ASCII as is: not the same.
func pyJSON(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 || c == 0x7f {
					fmt.Fprintf(&b, `\u%04x`, c)
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		// a lone surrogate in WTF-8: ED A0..BF 80..BF
		if c == 0xed && i+2 < len(s) && s[i+1] >= 0xa0 && s[i+1] <= 0xbf && s[i+2] >= 0x80 && s[i+2] <= 0xbf {
			cp := rune(c&0x0f)<<12 | rune(s[i+1]&0x3f)<<6 | rune(s[i+2]&0x3f)
			fmt.Fprintf(&b, `\u%04x`, cp)
			i += 3
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return "", fmt.Errorf("session id: invalid UTF-8 at byte %d", i)
		}
		if r > 0xffff {
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		} else {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	b.WriteByte('"')
	return b.String(), nil
}

type summary struct {
	events int64
	head   string // hex SHA-256 of the last line, newline excluded
	object string // hex SHA-256 of the whole file
}

// summarize counts the lines of events.ndjson (a last line without its newline
// counts) and hashes its last line and the whole file. No line at all: the head
// is the digest of an empty line.
func summarize(data []byte) summary {
	var s summary
	obj := sha256.Sum256(data)
	s.object = hex.EncodeToString(obj[:])
	body := data
	if len(body) > 0 && body[len(body)-1] == '\n' {
		body = body[:len(body)-1]
	}
	last := body
	if len(data) > 0 {
		s.events = int64(bytes.Count(body, []byte("\n"))) + 1
		if k := bytes.LastIndexByte(body, '\n'); k >= 0 {
			last = body[k+1:]
		}
	}
	h := sha256.Sum256(last)
	s.head = hex.EncodeToString(h[:])
	return s
}

// entryText is the log entry of a version (tlog.md, issue 9).
func entryText(sid string, version int64, s summary) (string, error) {
	q, err := pyJSON(sid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("agent-traced/head/v1\nsession %s\nversion %d\nevents %d\nhead %s\nobject %s\n",
		q, version, s.events, s.head, s.object), nil
}

// checkEntry checks the form of an entry read from the log and returns its
// session (as written, JSON) and version.
func checkEntry(e []byte) (string, int64, error) {
	lines := strings.Split(string(e), "\n")
	if len(lines) != 7 || lines[6] != "" || lines[0] != "agent-traced/head/v1" {
		return "", 0, fmt.Errorf("entry %q: not an agent-traced/head/v1 entry", e)
	}
	fields := []string{"session", "version", "events", "head", "object"}
	vals := make([]string, len(fields))
	for i, f := range fields {
		l := lines[i+1]
		if !strings.HasPrefix(l, f+" ") {
			return "", 0, fmt.Errorf("entry %q: line %d is not %q", e, i+2, f)
		}
		vals[i] = l[len(f)+1:]
	}
	q := vals[0]
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", 0, fmt.Errorf("entry %q: session is not a JSON string", e)
	}
	for _, c := range []byte(q) {
		if c < 0x20 || c > 0x7e {
			return "", 0, fmt.Errorf("entry %q: session is not ensure_ascii JSON", e)
		}
	}
	v, err := decimal(vals[1])
	if err != nil || v < 1 {
		return "", 0, fmt.Errorf("entry %q: bad version", e)
	}
	if _, err := decimal(vals[2]); err != nil {
		return "", 0, fmt.Errorf("entry %q: bad events", e)
	}
	for _, h := range vals[3:] {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || strings.ToLower(h) != h {
			return "", 0, fmt.Errorf("entry %q: bad hex digest %q", e, h)
		}
	}
	return q, v, nil
}

// ---- proofs ---------------------------------------------------------------------

func cmdProof(vkeyArg, proofFile, eventsFile, sid, versionArg string) error {
	line, err := checkProofFiles(readKey(vkeyArg), proofFile, eventsFile, sid, versionArg)
	if err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}

// cmdProofs runs checkProofFiles over every line of batch, each
// "PROOFFILE<TAB>EVENTSFILE<TAB>SESSIONID %-escaped<TAB>VERSION", printing
// one line each, in order: "ok index ..." as proof does, or "fail <reason>".
// One process for hundreds of versions; the checks are those of proof.
func cmdProofs(vkeyArg, batch string) error {
	vkey := readKey(vkeyArg)
	b, err := os.ReadFile(batch)
	if err != nil {
		return err
	}
	failed := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return fmt.Errorf("%s: bad line %q", batch, l)
		}
		sid, err := url.PathUnescape(f[2])
		var line string
		if err == nil {
			line, err = checkProofFiles(vkey, f[0], f[1], sid, f[3])
		}
		if err != nil {
			failed++
			line = "fail " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Println(line)
	}
	if failed > 0 {
		return fmt.Errorf("%d proofs failed", failed)
	}
	return nil
}

// checkProofFiles checks a tlog-proof@v1 file for the entry of version
// versionArg of session sid rebuilt from eventsFile.
func checkProofFiles(vkey, proofFile, eventsFile, sid, versionArg string) (string, error) {
	version, err := decimal(versionArg)
	if err != nil {
		return "", fmt.Errorf("version: %v", err)
	}
	data, err := os.ReadFile(proofFile)
	if err != nil {
		return "", err
	}
	events, err := os.ReadFile(eventsFile)
	if err != nil {
		return "", err
	}
	return checkProof(vkey, data, events, sid, version)
}

func checkProof(vkey string, data, events []byte, sid string, version int64) (string, error) {
	var err error
	// c2sp.org/tlog-proof@v1: the header lines, an empty line, the checkpoint.
	blank := bytes.Index(data, []byte("\n\n"))
	if blank < 0 {
		return "", errors.New("proof: no empty line before the checkpoint")
	}
	lines := strings.Split(string(data[:blank]), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return "", fmt.Errorf("proof: first line %q", lines[0])
	}
	lines = lines[1:]
	var extra []byte // opaque to the proof; ours carries the entry (diagnostics only)
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		if extra, err = base64.StdEncoding.DecodeString(lines[0][len("extra "):]); err != nil {
			return "", fmt.Errorf("proof: bad extra line: %v", err)
		}
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return "", errors.New("proof: no index line")
	}
	index, err := decimal(lines[0][len("index "):])
	if err != nil {
		return "", fmt.Errorf("proof: index: %v", err)
	}
	var rp tlog.RecordProof
	for _, l := range lines[1:] {
		h, err := hash64(l)
		if err != nil {
			return "", fmt.Errorf("proof: %v", err)
		}
		rp = append(rp, h)
	}
	_, tree, err := openCheckpoint(vkey, data[blank+2:])
	if err != nil {
		return "", err
	}
	if index >= tree.N {
		return "", fmt.Errorf("proof: index %d is not in the tree of size %d", index, tree.N)
	}
	s := summarize(events)
	entry, err := entryText(sid, version, s)
	if err != nil {
		return "", err
	}
	leaf := tlog.RecordHash([]byte(entry))
	if err := tlog.CheckRecord(rp, tree.N, tree.Hash, index, leaf); err != nil {
		return "", fmt.Errorf("proof: entry %d of the tree of size %d: %v%s", index, tree.N, err, differs(entry, extra))
	}
	return fmt.Sprintf("ok index %d size %d events %d head %s object %s", index, tree.N, s.events, s.head, s.object), nil
}

// differs says which lines of the rebuilt entry differ from the entry the
// proof's extra line carries, if it carries one.
func differs(entry string, extra []byte) string {
	mine := strings.Split(entry, "\n")
	theirs := strings.Split(string(extra), "\n")
	if len(extra) == 0 || len(theirs) != len(mine) {
		return fmt.Sprintf(" (the entry rebuilt: %q)", entry)
	}
	var d []string
	for i := range mine {
		if mine[i] != theirs[i] {
			d = append(d, fmt.Sprintf("%q, the proof's extra has %q", mine[i], theirs[i]))
		}
	}
	if len(d) == 0 {
		return " (the entry rebuilt is the proof's extra entry)"
	}
	return " (the entry rebuilt has " + strings.Join(d, "; ") + ")"
}

// ---- tiles ----------------------------------------------------------------------

var client = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{Proxy: nil}, // loopback: never through a proxy
}

// get fetches url; a url that is not http(s) is a file (a mirrored copy of
// the log's tiles: "gotlog tiles DIR ..." reads DIR/log/tile/...).
func get(url string) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return os.ReadFile(url)
	}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, b)
	}
	return b, nil
}

// ourPath maps a Go tile (tile/8/L/N[.p/W], tile/8/data/N[.p/W]) to the c2sp
// path under /log/ (tile/L/N[.p/W], tile/entries/N[.p/W]).
func ourPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	if strings.HasPrefix(p, "data/") {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return "/log/tile/" + p
}

// httpTiles is a tlog.TileReader over our server. Tiles come back to
// ReadTiles from the cache only after tlog authenticated them (SaveTiles),
// and tlog authenticates them again on every read.
type httpTiles struct {
	base    string
	fetched int
	saved   map[tlog.Tile][]byte
}

func (r *httpTiles) Height() int { return 8 }

func (r *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if b, ok := r.saved[t]; ok {
			out[i] = b
			continue
		}
		b, err := get(r.base + ourPath(t))
		if err != nil {
			return nil, err
		}
		r.fetched++
		out[i] = b
	}
	return out, nil
}

func (r *httpTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.saved[t] = data[i]
	}
}

// parseBundle splits an entry bundle: big-endian uint16 length, then the entry.
func parseBundle(b []byte, want int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("entry bundle: truncated length")
		}
		n := int(b[0])<<8 | int(b[1])
		if len(b) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	if len(out) != want {
		return nil, fmt.Errorf("entry bundle: %d entries, want %d", len(out), want)
	}
	return out, nil
}

func cmdTiles(base, vkeyArg, oldFile, newFile string) error {
	base = strings.TrimSuffix(base, "/")
	vkey := readKey(vkeyArg)
	oldMsg, err := os.ReadFile(oldFile)
	if err != nil {
		return err
	}
	newMsg, err := os.ReadFile(newFile)
	if err != nil {
		return err
	}
	oldOrigin, oldTree, err := openCheckpoint(vkey, oldMsg)
	if err != nil {
		return fmt.Errorf("old %v", err)
	}
	newOrigin, newTree, err := openCheckpoint(vkey, newMsg)
	if err != nil {
		return fmt.Errorf("new %v", err)
	}
	if oldOrigin != newOrigin {
		return fmt.Errorf("origins differ: %q, %q", oldOrigin, newOrigin)
	}
	tr := &httpTiles{base: base, saved: make(map[tlog.Tile][]byte)}
	hr := tlog.TileHashReader(newTree, tr)
	if oldTree.N > newTree.N { // tlog refuses to prove that a tree shrank
		_, err := tlog.ProveTree(newTree.N, oldTree.N, hr)
		if err == nil {
			err = errors.New("tlog.ProveTree accepted it")
		}
		return fmt.Errorf("ProveTree(%d, %d): %v: the old checkpoint is larger than the new one", newTree.N, oldTree.N, err)
	}
	th, err := tlog.TreeHash(newTree.N, hr)
	if err != nil {
		return fmt.Errorf("tree hash from tiles: %v", err)
	}
	if th != newTree.Hash {
		return errors.New("the tiles' tree hash is not the checkpoint's root")
	}

	// Every entry: its bundle, its level-0 hash, its inclusion proof.
	seen := make(map[string]int64)
	bundles := 0
	for n := int64(0); n*256 < newTree.N; n++ {
		w := newTree.N - n*256
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: -1, N: n, W: int(w)}
		b, err := get(base + ourPath(t))
		if err != nil {
			return err
		}
		bundles++
		entries, err := parseBundle(b, int(w))
		if err != nil {
			return fmt.Errorf("%s: %v", ourPath(t), err)
		}
		idx := make([]int64, w)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, n*256+int64(i))
		}
		leaves, err := hr.ReadHashes(idx)
		if err != nil {
			return fmt.Errorf("level-0 hashes of bundle %d: %v", n, err)
		}
		for i, e := range entries {
			k := n*256 + int64(i)
			q, v, err := checkEntry(e)
			if err != nil {
				return fmt.Errorf("entry %d: %v", k, err)
			}
			key := q + " " + strconv.FormatInt(v, 10)
			if j, dup := seen[key]; dup {
				return fmt.Errorf("entries %d and %d both log version %d of %s", j, k, v, q)
			}
			seen[key] = k
			rh := tlog.RecordHash(e)
			if rh != leaves[i] {
				return fmt.Errorf("entry %d: its record hash is not the level-0 tile's hash", k)
			}
			p, err := tlog.ProveRecord(newTree.N, k, hr)
			if err != nil {
				return fmt.Errorf("ProveRecord(%d, %d): %v", newTree.N, k, err)
			}
			if err := tlog.CheckRecord(p, newTree.N, newTree.Hash, k, rh); err != nil {
				return fmt.Errorf("CheckRecord(entry %d): %v", k, err)
			}
		}
	}

	// The two checkpoints are consistent.
	plen := 0
	switch {
	case oldTree.N == 0:
		if oldTree.Hash != tlog.Hash(sha256.Sum256(nil)) {
			return errors.New("old checkpoint: size 0 with a root other than SHA-256(\"\")")
		}
	default:
		p, err := tlog.ProveTree(newTree.N, oldTree.N, hr)
		if err != nil {
			return fmt.Errorf("ProveTree(%d, %d): %v", newTree.N, oldTree.N, err)
		}
		if err := tlog.CheckTree(p, newTree.N, newTree.Hash, oldTree.N, oldTree.Hash); err != nil {
			return fmt.Errorf("CheckTree(%d -> %d): %v", oldTree.N, newTree.N, err)
		}
		plen = len(p)
	}
	fmt.Printf("ok %d entries proved, %d bundles, %d tiles fetched, consistent %d -> %d (%d hashes)\n",
		newTree.N, bundles, tr.fetched, oldTree.N, newTree.N, plen)
	return nil
}

// ---- listing --------------------------------------------------------------------

// jsonString decodes a JSON string literal into WTF-8: a lone surrogate escape
// (\ud800) stays a surrogate, as Python keeps it (encoding/json would make it
// U+FFFD and lose the session id).
func jsonString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", fmt.Errorf("not a JSON string: %s", raw)
	}
	s := raw[1 : len(raw)-1]
	var b []byte
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s[i+2:i+6]), 16, 32)
		return rune(v), err == nil
	}
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			b = append(b, s[i])
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("bad JSON escape")
		}
		switch s[i+1] {
		case '"', '\\', '/':
			b = append(b, s[i+1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(i)
			if !ok {
				return "", errors.New("bad JSON \\u escape")
			}
			if r >= 0xd800 && r < 0xdc00 {
				if lo, ok := hex4(i + 6); ok && lo >= 0xdc00 && lo < 0xe000 {
					b = utf8.AppendRune(b, 0x10000+(r-0xd800)<<10+(lo-0xdc00))
					i += 12
					continue
				}
			}
			if r >= 0xd800 && r < 0xe000 { // lone: WTF-8
				b = append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
			} else {
				b = utf8.AppendRune(b, r)
			}
			i += 6
			continue
		default:
			return "", errors.New("bad JSON escape")
		}
		i += 2
	}
	return string(b), nil
}

func pctEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("._~-", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func cmdList(base string) error {
	base = strings.TrimSuffix(base, "/")
	b, err := get(base + "/sessions")
	if err != nil {
		return err
	}
	var sessions []struct {
		ID json.RawMessage `json:"session_id"`
	}
	if err := json.Unmarshal(b, &sessions); err != nil {
		return fmt.Errorf("GET /sessions: %v", err)
	}
	for _, s := range sessions {
		sid, err := jsonString(s.ID)
		if err != nil {
			return err
		}
		esc := pctEscape(sid)
		b, err := get(base + "/sessions/" + esc + "/versions")
		if err != nil {
			return err
		}
		var vs struct {
			Versions []struct {
				Version      int64   `json:"version"`
				Events       int64   `json:"events"`
				EventsSHA256 string  `json:"events_sha256"`
				Head         *string `json:"head"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(b, &vs); err != nil {
			return fmt.Errorf("GET /sessions/%s/versions: %v", esc, err)
		}
		for _, v := range vs.Versions {
			head := "-"
			if v.Head != nil {
				head = *v.Head
			}
			fmt.Printf("%s %d %d %s %s\n", esc, v.Version, v.Events, v.EventsSHA256, head)
		}
	}
	return nil
}
