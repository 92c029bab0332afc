package httpapi

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// parseAssign decodes the usual shape of an assign body without reflection: checkout sends it
// on every page, and decoding through reflection cost a fifth of the request. It accepts only
// what it can decode exactly as the general decoder (decodeBody) would — keys shopper_id,
// attributes, experiments, track and context (null, or {"products": [strings]}) spelled as
// documented, each once; strings of valid UTF-8 without escapes; attribute values that are
// strings, numbers, booleans or null, each name once — and reports false for anything else
// (escapes, nested attribute values, "at", other keys, repeated keys, bad syntax). The caller then decodes the body the
// general way, which also explains what is wrong with it. Its place on the hot path is shown
// against the general decoder in docs/benchmarks.md; FuzzDecoders checks that the two agree.
//
// attrs receives the attributes (it should be empty); the strings of req share one
// allocation, made from body; a context goes into req's own ctx, whose list it reuses. When
// every attribute number is spelt as the encoder would spell it, req.attrsJSON is the
// attributes object as the body has it ("{}" without one), for the exposure's row.
func parseAssign(body []byte, req *assignRequest, attrs map[string]any) bool {
	p := assignParser{b: body}
	if !p.skip('{') {
		return false
	}
	var text string // body as a string, made once when the first string is kept
	keep := func(start, end int) string {
		if text == "" {
			text = string(body)
		}
		return text[start:end]
	}
	sawAttrs := false
	var seen [5]bool // a repeated key goes the general way, which refuses it
	once := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	for first := true; ; first = false {
		if p.skip('}') {
			if !first {
				return false // a trailing comma before }
			}
			break
		}
		start, end, ok := p.key()
		if !ok {
			return false
		}
		switch string(body[start:end]) {
		case "shopper_id":
			if !once(0) {
				return false
			}
			s, e, ok := p.str()
			if !ok {
				return false // null and escapes go the general way
			}
			req.ShopperID = keep(s, e)
		case "attributes":
			if !once(1) {
				return false
			}
			if p.null() {
				break
			}
			if !p.skip('{') {
				return false
			}
			sawAttrs = true
			clear(attrs)
			objStart, asEncoded := p.i-1, true
			if !p.skip('}') {
				for {
					ks, ke, ok := p.key()
					if !ok {
						return false
					}
					var v any
					switch {
					case p.null():
					case p.peek() == '"':
						s, e, ok := p.str()
						if !ok {
							return false
						}
						v = keep(s, e)
					case p.literal("true"):
						v = true
					case p.literal("false"):
						v = false
					default:
						p.space()
						ns := p.i
						f, ok := p.number()
						if !ok {
							return false
						}
						v = f
						asEncoded = asEncoded && spelledAsEncoded(body[ns:p.i], f)
					}
					k := keep(ks, ke)
					if _, dup := attrs[k]; dup {
						return false // the general decoder refuses it, naming it
					}
					attrs[k] = v
					if p.skip(',') {
						continue
					}
					if !p.skip('}') {
						return false
					}
					break
				}
			}
			if asEncoded {
				req.attrsJSON = keep(objStart, p.i)
			}
			req.attrsKeys = len(attrs)
		case "experiments":
			if !once(2) {
				return false
			}
			if p.null() {
				req.Experiments = nil
				break
			}
			if !p.skip('[') {
				return false
			}
			list := req.Experiments[:0]
			if !p.skip(']') {
				for {
					s, e, ok := p.str()
					if !ok {
						return false
					}
					list = append(list, keep(s, e))
					if p.skip(',') {
						continue
					}
					if !p.skip(']') {
						return false
					}
					break
				}
			}
			req.Experiments = list
		case "track":
			if !once(3) {
				return false
			}
			switch {
			case p.null():
				req.Track = nil
			case p.literal("true"):
				req.Track = &trackTrue
			case p.literal("false"):
				req.Track = &trackFalse
			default:
				return false
			}
		case "context":
			if !once(4) {
				return false
			}
			valueAt := p.i
			if p.null() {
				req.Context = nil
				break
			}
			// Only {"products": [...]}: an empty object, null products or another key go the
			// general way.
			if !p.skip('{') {
				return false
			}
			if ks, ke, ok := p.key(); !ok || string(body[ks:ke]) != "products" || !p.skip('[') {
				return false
			}
			products := req.ctx.Products[:0]
			if !p.skip(']') {
				for {
					s, e, ok := p.str()
					if !ok {
						return false
					}
					products = append(products, keep(s, e))
					if p.skip(',') {
						continue
					}
					if !p.skip(']') {
						return false
					}
					break
				}
			}
			if !p.skip('}') {
				return false
			}
			if products == nil {
				products = []string{} // [] is an empty list, as the general decoder makes it
			}
			req.ctx.Products = products
			req.Context = &req.ctx
			req.contextAt = [2]int{valueAt, p.i}
		default:
			return false // "at", a misspelt key or an unknown one
		}
		if p.skip(',') {
			continue
		}
		if !p.skip('}') {
			return false
		}
		break
	}
	p.space()
	if p.i != len(body) {
		return false
	}
	if sawAttrs {
		req.Attributes = attrs
	} else {
		req.Attributes = nil
		req.attrsJSON, req.attrsKeys = "{}", 0
	}
	return true
}

// spelledAsEncoded reports whether tok, a JSON number, is spelt as encoding/json (and the
// recorder's encoder) writes f: then Postgres stores the body's attributes as the same jsonb
// value as the encoded map, where "5.0" or "1e2" would keep a different spelling.
// Numbers the encoder writes with an exponent are left to it.
func spelledAsEncoded(tok []byte, f float64) bool {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return false
	}
	var buf [32]byte
	return string(strconv.AppendFloat(buf[:0], f, 'f', -1, 64)) == string(tok)
}

// trackTrue and trackFalse are what Track points at after the fast decoder, which allocates
// nothing for it; nobody writes through Track.
var trackTrue, trackFalse = true, false

// assignParser is a cursor over a JSON body.
type assignParser struct {
	b []byte
	i int
}

func (p *assignParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, or 0 at the end.
func (p *assignParser) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// skip consumes c if it comes next.
func (p *assignParser) skip(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// literal consumes the word w if it comes next.
func (p *assignParser) literal(w string) bool {
	p.space()
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

func (p *assignParser) null() bool { return p.literal("null") }

// str consumes a string without escapes or control characters and returns where its content
// lies in the body; encoding/json would keep such a string byte for byte, if it is valid UTF-8.
func (p *assignParser) str() (start, end int, ok bool) {
	if !p.skip('"') {
		return 0, 0, false
	}
	start = p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			end = p.i
			p.i++
			if !ascii && !utf8.Valid(p.b[start:end]) {
				return 0, 0, false // encoding/json would replace the invalid bytes
			}
			return start, end, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, 0, false
}

// key consumes an object key and its colon.
func (p *assignParser) key() (start, end int, ok bool) {
	start, end, ok = p.str()
	if !ok || !p.skip(':') {
		return 0, 0, false
	}
	return start, end, true
}

// number consumes a number in JSON's grammar and returns it as encoding/json would decode it
// into an interface: a float64.
func (p *assignParser) number() (float64, bool) {
	p.space()
	b, start := p.b, p.i
	i := p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		return 0, false // out of range: encoding/json reports it
	}
	p.i = i
	return f, true
}
