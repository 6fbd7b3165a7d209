// Command gonote lets tests/test_note.c check our signed notes against Go's
// golang.org/x/mod/sumdb/note, the reference implementation of
// c2sp.org/signed-note.
//
//	gonote verify VKEY... < note       note.Open; prints "name+hash" of each verified
//	                                   signature, or Go's error on stderr (exit 1)
//	gonote sign SKEY... < text         note.Sign; prints the signed note
//	gonote keygen NAME [SEEDHEX]       note.GenerateKey; prints skey and vkey lines
//	                                   (the 32-byte seed from SEEDHEX, else random)
//	gonote batch VKEY... < records     note.Open over many notes: each record is
//	                                   "<decimal length>\n<bytes>"; prints one line
//	                                   per record, "ok name+hash..." or "err <error>"
//
// Verifier keys of type 0x04 (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1),
// which x/mod does not know, are verified by cosigVerifier below; every other
// key goes through note.NewVerifier.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "verify":
		err = verify(os.Args[2:])
	case "sign":
		err = sign(os.Args[2:])
	case "keygen":
		err = keygen(os.Args[2:])
	case "batch":
		err = batch(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gonote verify VKEY... | sign SKEY... | keygen NAME [SEEDHEX] | batch VKEY...")
	os.Exit(2)
}

// cosigVerifier verifies Ed25519 cosignature/v1 signatures (type 0x04):
// an 8-byte big-endian timestamp, then the Ed25519 signature of
// "cosignature/v1\ntime <timestamp>\n" followed by the note text.
type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<63-1 {
		return false
	}
	m := fmt.Sprintf("cosignature/v1\ntime %d\n%s", t, msg)
	return ed25519.Verify(v.key, []byte(m), sig[8:])
}

// newCosigVerifier parses a vkey of type 0x04; ok is false when vkey is of
// another type (left to note.NewVerifier).
func newCosigVerifier(vkey string) (v note.Verifier, ok bool, err error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, false, nil
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) == 0 || key[0] != 0x04 {
		return nil, false, nil
	}
	hash, err := strconv.ParseUint(parts[1], 16, 32)
	if len(parts[1]) != 8 || err != nil || len(key) != 33 {
		return nil, true, errors.New("malformed verifier id")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
	if uint32(hash) != binary.BigEndian.Uint32(h[:]) {
		return nil, true, errors.New("invalid verifier hash")
	}
	return &cosigVerifier{name: parts[0], hash: uint32(hash), key: ed25519.PublicKey(key[1:])}, true, nil
}

func verifiers(vkeys []string) (note.Verifiers, error) {
	var list []note.Verifier
	for _, k := range vkeys {
		v, ok, err := newCosigVerifier(k)
		if !ok {
			v, err = note.NewVerifier(k)
		}
		if err != nil {
			return nil, fmt.Errorf("vkey %q: %v", k, err)
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), nil
}

func open(msg []byte, known note.Verifiers) (string, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range n.Sigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return strings.Join(names, " "), nil
}

func verify(vkeys []string) error {
	known, err := verifiers(vkeys)
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	names, err := open(msg, known)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(names) {
		fmt.Println(s)
	}
	return nil
}

func sign(skeys []string) error {
	var signers []note.Signer
	for _, k := range skeys {
		s, err := note.NewSigner(k)
		if err != nil {
			return fmt.Errorf("skey: %v", err)
		}
		signers = append(signers, s)
	}
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(msg)
	return err
}

func keygen(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		usage()
	}
	var r io.Reader = rand.Reader
	if len(args) == 2 {
		seed, err := hex.DecodeString(args[1])
		if err != nil || len(seed) != ed25519.SeedSize {
			return errors.New("SEEDHEX must be 64 hex digits")
		}
		r = bytes.NewReader(seed)
	}
	skey, vkey, err := note.GenerateKey(r, args[0])
	if err != nil {
		return err
	}
	fmt.Printf("%s\n%s\n", skey, vkey)
	return nil
}

func batch(vkeys []string) error {
	known, err := verifiers(vkeys)
	if err != nil {
		return err
	}
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		line, err := in.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || n < 0 {
			return fmt.Errorf("bad record length %q", line)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(in, msg); err != nil {
			return err
		}
		names, err := open(msg, known)
		if err != nil {
			fmt.Fprintf(out, "err %s\n", err)
		} else {
			fmt.Fprintf(out, "ok %s\n", names)
		}
	}
}
