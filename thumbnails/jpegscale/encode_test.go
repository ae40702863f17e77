package jpegscale_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math"
	"testing"

	"github.com/mediarepo/mediarepo/thumbnails/jpegscale"
)

// encodeFourComponent writes a baseline JPEG of four full-resolution planes
// with an Adobe APP14 marker of the given transform (0: CMYK, 2: YCCK), the
// files print workflows and Photoshop make and no Debian tool writes. It is
// a minimal encoder: unit quantisation and one flat Huffman table, where every
// symbol is 8 bits but the last, 9.
func encodeFourComponent(planes [4][]byte, w, h int, transform byte) []byte {
	var out bytes.Buffer
	seg := func(marker byte, payload []byte) {
		out.Write([]byte{0xff, marker})
		binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
		out.Write(payload)
	}
	out.Write([]byte{0xff, 0xd8})
	seg(0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, transform})
	dqt := make([]byte, 65)
	for i := 1; i < 65; i++ {
		dqt[i] = 1
	}
	seg(0xdb, dqt)
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 4}
	for c := range 4 {
		sof = append(sof, byte(c+1), 0x11, 0)
	}
	seg(0xc0, sof)
	table := make([]byte, 16, 16+256)
	table[7], table[8] = 255, 1
	for s := range 256 {
		table = append(table, byte(s))
	}
	seg(0xc4, append([]byte{0x00}, table...))
	seg(0xc4, append([]byte{0x10}, table...))
	seg(0xda, []byte{4, 1, 0, 2, 0, 3, 0, 4, 0, 0, 63, 0})
	bw := &bitWriter{out: &out}
	var preds [4]int
	for by := 0; by < (h+7)/8; by++ {
		for bx := 0; bx < (w+7)/8; bx++ {
			for c := range 4 {
				encodeBlock(bw, forwardDCT(planes[c], w, h, bx, by), &preds[c])
			}
		}
	}
	bw.flush()
	out.Write([]byte{0xff, 0xd9})
	return out.Bytes()
}

var zigzagOrder = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

// forwardDCT is the coefficients of block (bx, by) of plane, in zigzag order,
// edge samples repeated past the image.
func forwardDCT(plane []byte, w, h, bx, by int) [64]int {
	var out [64]int
	for k := range 64 {
		v, u := zigzagOrder[k]/8, zigzagOrder[k]%8
		sum := 0.0
		for y := range 8 {
			for x := range 8 {
				px := float64(plane[min(by*8+y, h-1)*w+min(bx*8+x, w-1)]) - 128
				sum += px * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
			}
		}
		cu, cv := 1.0, 1.0
		if u == 0 {
			cu = 1 / math.Sqrt2
		}
		if v == 0 {
			cv = 1 / math.Sqrt2
		}
		out[k] = int(math.Round(cu * cv / 4 * sum))
	}
	return out
}

func encodeBlock(bw *bitWriter, zz [64]int, pred *int) {
	diff := zz[0] - *pred
	*pred = zz[0]
	size, bits := magnitude(diff)
	bw.symbol(size)
	bw.write(bits, size)
	run := 0
	for k := 1; k < 64; k++ {
		if zz[k] == 0 {
			run++
			continue
		}
		for run > 15 {
			bw.symbol(0xf0)
			run -= 16
		}
		size, bits := magnitude(zz[k])
		bw.symbol(run<<4 | size)
		bw.write(bits, size)
		run = 0
	}
	if run > 0 {
		bw.symbol(0x00)
	}
}

// magnitude is the JPEG size category of v and its bits.
func magnitude(v int) (int, int) {
	a := max(v, -v)
	size := 0
	for a>>size != 0 {
		size++
	}
	if v < 0 {
		v += 1<<size - 1
	}
	return size, v
}

type bitWriter struct {
	out  *bytes.Buffer
	acc  uint32
	bits int
}

// symbol writes the flat table's code for s: s in 8 bits, 255 as 9.
func (b *bitWriter) symbol(s int) {
	if s == 255 {
		b.write(0x1fe, 9)
		return
	}
	b.write(s, 8)
}

func (b *bitWriter) write(v, n int) {
	for i := n - 1; i >= 0; i-- {
		b.acc = b.acc<<1 | uint32(v>>i&1)
		b.bits++
		if b.bits == 8 {
			b.emit(byte(b.acc))
		}
	}
}

func (b *bitWriter) emit(c byte) {
	b.out.WriteByte(c)
	if c == 0xff {
		b.out.WriteByte(0)
	}
	b.acc, b.bits = 0, 0
}

func (b *bitWriter) flush() {
	if b.bits > 0 {
		b.write(0x7f, 8-b.bits) // pad with ones
	}
}

func TestFourComponentFiles(t *testing.T) {
	const w, h = 45, 30
	src := photo(w, h, 9)
	var planes [4][]byte
	for c := range 4 {
		planes[c] = make([]byte, w*h)
		for i := range w * h {
			if c < 3 {
				planes[c][i] = src.Pix[4*i+c]
			} else {
				planes[c][i] = byte(i % 256)
			}
		}
	}
	for name, transform := range map[string]byte{"CMYK": 0, "YCCK": 2} {
		t.Run(name, func(t *testing.T) {
			data := encodeFourComponent(planes, w, h, transform)
			want, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("image/jpeg: %v", err)
			}
			got, err := jpegscale.Decode(context.Background(), data, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got.(*image.CMYK); !ok || got.Bounds() != want.Bounds() {
				t.Fatalf("decoded %T %v, want *image.CMYK %v", got, got.Bounds(), want.Bounds())
			}
			g, wa := got.(*image.CMYK), want.(*image.CMYK)
			worst := 0
			for i := range g.Pix {
				worst = max(worst, int(math.Abs(float64(int(g.Pix[i])-int(wa.Pix[i])))))
			}
			if worst > 2 {
				t.Errorf("a CMYK sample differs by %d from image/jpeg's, want at most 2", worst)
			}
			small, err := jpegscale.Decode(context.Background(), data, 8)
			if err != nil || small.Bounds().Dx() != 6 || small.Bounds().Dy() != 4 {
				t.Errorf("scale 1/8: %v, %v; want 6x4", small, err)
			}
		})
	}
}
