package jpegscale

import "errors"

// bitReader reads entropy-coded data: MSB first, with the 0xFF 0x00 byte
// stuffing removed. At a marker it feeds zero bits and stops consuming, as
// libjpeg does; running past the end of the data is an error.
type bitReader struct {
	data   []byte
	pos    int    // next byte of data
	acc    uint64 // bits, MSB first
	n      uint   // valid bits in acc
	marker bool   // pos is at a marker: no more data in this segment
	zeros  int    // zero bytes fed at a marker or the end
}

var (
	errTruncated = errors.New("jpegscale: entropy-coded data ends early")
	errBadCode   = errors.New("jpegscale: bad Huffman code")
)

// maxZeroFill is how many zero bytes may be fed past the end of a segment:
// enough for the padding of its last codes, not enough to decode garbage.
const maxZeroFill = 8

// fill tops the accumulator up to at least 57 bits.
func (b *bitReader) fill() {
	for b.n <= 56 {
		var c byte
		switch {
		case b.marker || b.pos >= len(b.data):
			b.zeros++
		default:
			c = b.data[b.pos]
			if c != 0xff {
				b.pos++
				break
			}
			if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0x00 {
				b.pos += 2 // stuffed zero: the 0xFF is data
				break
			}
			// A marker (or a fill byte before one): this segment is over.
			b.marker, c = true, 0
			b.zeros++
		}
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

// overrun reports whether more zeros were fed than any padding explains.
func (b *bitReader) overrun() bool { return b.zeros > maxZeroFill }

// bit reads one bit.
func (b *bitReader) bit() uint32 {
	if b.n == 0 {
		b.fill()
	}
	v := uint32(b.acc >> 63)
	b.acc <<= 1
	b.n--
	return v
}

// bitsN reads n (0-16) bits as an unsigned value.
func (b *bitReader) bitsN(n uint) uint32 {
	if n == 0 {
		return 0
	}
	if b.n < n {
		b.fill()
	}
	v := uint32(b.acc >> (64 - n))
	b.acc <<= n
	b.n -= n
	return v
}

// receiveExtend reads an s-bit magnitude category value and extends its sign
// (T.81 F.2.2.1).
func (b *bitReader) receiveExtend(s uint8) int32 {
	if s == 0 {
		return 0
	}
	v := int32(b.bitsN(uint(s)))
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// decode reads one Huffman-coded symbol.
func (b *bitReader) decode(h *huffman) (uint8, error) {
	if b.n < 16 {
		b.fill()
	}
	if v := h.lut[b.acc>>(64-lookBits)]; v != 0 {
		l := uint(v >> 8)
		b.acc <<= l
		b.n -= l
		return uint8(v), nil
	}
	for l := lookBits + 1; l <= 16; l++ {
		code := int32(b.acc >> (64 - uint(l)))
		if code <= h.maxCode[l] {
			b.acc <<= uint(l)
			b.n -= uint(l)
			return h.vals[h.valPtr[l]+code-h.minCode[l]], nil
		}
	}
	return 0, errBadCode
}

// restart consumes a restart marker (RST0-RST7) after the bits of an
// interval, dropping the rest of its last byte. A missing marker is
// tolerated: the reader moves on to wherever the next marker is.
func (b *bitReader) restart() {
	b.acc, b.n, b.zeros, b.marker = 0, 0, 0, false
	for b.pos+1 < len(b.data) {
		if b.data[b.pos] == 0xff && b.data[b.pos+1] >= 0xd0 && b.data[b.pos+1] <= 0xd7 {
			b.pos += 2
			return
		}
		if b.data[b.pos] == 0xff && b.data[b.pos+1] != 0x00 && b.data[b.pos+1] != 0xff {
			return // another marker: no restart here
		}
		b.pos++
	}
}

// nextMarker returns the position of the marker that ends the entropy-coded
// segment starting at pos, skipping any data left unread.
func nextMarker(data []byte, pos int) int {
	for pos+1 < len(data) {
		if data[pos] == 0xff && data[pos+1] != 0x00 && !(data[pos+1] >= 0xd0 && data[pos+1] <= 0xd7) && data[pos+1] != 0xff {
			return pos
		}
		pos++
	}
	return len(data)
}
