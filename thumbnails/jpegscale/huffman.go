package jpegscale

import "errors"

// lookBits is the width of the fast Huffman lookup: most codes are shorter.
const lookBits = 9

// huffman is one decoding table: a lookup of the first lookBits bits for the
// short codes, and the canonical code ranges per length for the longer ones.
type huffman struct {
	lut     [1 << lookBits]uint16 // length<<8 | symbol; 0 where the code is longer
	maxCode [17]int32             // largest code of each length, -1 if none
	valPtr  [17]int32             // index in vals of the first code of each length
	minCode [17]int32
	vals    []byte
	defined bool
}

var errBadHuffman = errors.New("jpegscale: bad Huffman table")

// build makes the table from the counts of codes of each length (1-16) and
// the symbols in code order (T.81 Annex C).
func (h *huffman) build(counts [16]int, symbols []byte) error {
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 || total > 256 || total != len(symbols) {
		return errBadHuffman
	}
	*h = huffman{vals: append([]byte(nil), symbols...), defined: true}
	code, k := int32(0), 0
	for l := 1; l <= 16; l++ {
		n := counts[l-1]
		if code+int32(n) > 1<<l {
			return errBadHuffman // more codes than the length can hold
		}
		h.valPtr[l], h.minCode[l] = int32(k), code
		for range n {
			if l <= lookBits {
				shift := lookBits - l
				base := int(code) << shift
				for j := 0; j < 1<<shift; j++ {
					h.lut[base+j] = uint16(l)<<8 | uint16(symbols[k])
				}
			}
			code++
			k++
		}
		h.maxCode[l] = code - 1
		if n == 0 {
			h.maxCode[l] = -1
		}
		code <<= 1
	}
	return nil
}
