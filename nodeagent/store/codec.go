package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A log entry's data is a batch of requests in a compact binary form that
// keeps argument types exact (JSON would turn int64 into float64):
//
//	entry     = version:byte count:uvarint request*
//	request   = count:uvarint statement*
//	statement = sql:string nargs:uvarint arg* expect
//	arg       = tag:byte [value]   (argNil, argFalse, argTrue, argInt varint,
//	                                argFloat 8 bytes LE, argString string)
//	expect    = 0 | 1 varint
//	string    = len:uvarint bytes
const entryVersion byte = 1

// Argument tags.
const (
	argNil byte = iota
	argFalse
	argTrue
	argInt
	argFloat
	argString
)

// errCorruptEntry is returned when log entry data cannot be decoded.
var errCorruptEntry = errors.New("corrupt log entry")

// errUnknownVersion is returned for an entry written by a codec version this
// binary does not know (a newer binary wrote it). Unlike a corrupt entry,
// which every replica skips alike, it must stop the FSM: newer replicas apply
// it, and skipping it here would make this replica diverge.
var errUnknownVersion = errors.New("unknown log entry codec version")

// NeedsUpgrade reports whether err (Broken's) is an entry written by a newer codec
// version: reopening the store cannot mend it, only a newer binary can.
func NeedsUpgrade(err error) bool { return errors.Is(err, errUnknownVersion) }

// encodeRequest appends the binary form of a validated request to b.
func encodeRequest(b []byte, req Request) []byte {
	b = binary.AppendUvarint(b, uint64(len(req)))
	for _, st := range req {
		b = appendString(b, st.SQL)
		b = binary.AppendUvarint(b, uint64(len(st.Args)))
		for _, a := range st.Args {
			b = appendArg(b, a)
		}
		if st.Expect == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendVarint(append(b, 1), *st.Expect)
		}
	}
	return b
}

// appendArg appends one normalised argument.
func appendArg(b []byte, a any) []byte {
	switch v := a.(type) {
	case nil:
		return append(b, argNil)
	case bool:
		if v {
			return append(b, argTrue)
		}
		return append(b, argFalse)
	case int64:
		return binary.AppendVarint(append(b, argInt), v)
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, argFloat), math.Float64bits(v))
	case string:
		return appendString(append(b, argString), v)
	}
	panic(fmt.Sprintf("store: unnormalised argument type %T", a))
}

// appendString appends a length-prefixed string.
func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeEntry builds a log entry from pre-encoded requests.
func encodeEntry(reqs [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, r := range reqs {
		n += len(r)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(append(b, entryVersion), uint64(len(reqs)))
	for _, r := range reqs {
		b = append(b, r...)
	}
	return b
}

// decoder reads the binary form; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

// decodeEntry parses a log entry's data.
func decodeEntry(data []byte) ([]Request, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", errCorruptEntry)
	}
	if data[0] != entryVersion {
		return nil, fmt.Errorf("%w %d (this binary reads version %d; upgrade it)", errUnknownVersion, data[0], entryVersion)
	}
	d := &decoder{b: data[1:]}
	n := d.count()
	reqs := make([]Request, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		reqs = append(reqs, d.request())
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorruptEntry, len(d.b))
	}
	return reqs, d.err
}

// request reads one request.
func (d *decoder) request() Request {
	n := d.count()
	req := make(Request, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		st := Statement{SQL: d.string()}
		nargs := d.count()
		if nargs > 0 {
			st.Args = make([]any, 0, nargs)
		}
		for j := uint64(0); j < nargs && d.err == nil; j++ {
			st.Args = append(st.Args, d.arg())
		}
		if d.byte() == 1 {
			st.Expect = Int64(d.varint())
		}
		req = append(req, st)
	}
	return req
}

// arg reads one argument.
func (d *decoder) arg() any {
	switch tag := d.byte(); tag {
	case argNil:
		return nil
	case argFalse:
		return false
	case argTrue:
		return true
	case argInt:
		return d.varint()
	case argFloat:
		if len(d.b) < 8 {
			d.fail("short float")
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return v
	case argString:
		return d.string()
	default:
		d.fail(fmt.Sprintf("argument tag %d", tag))
		return nil
	}
}

// count reads a length, bounded by the remaining bytes (each element takes at
// least one byte) so corrupt data cannot make us allocate huge slices.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("count exceeds data")
		return 0
	}
	return n
}

// string reads a length-prefixed string.
func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("short string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// byte reads one byte.
func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("short data")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// uvarint reads an unsigned varint.
func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads a signed varint.
func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// fail records the first decoding error.
func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorruptEntry, what)
	}
	d.b = nil
}
