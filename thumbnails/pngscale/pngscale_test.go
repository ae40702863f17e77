package pngscale_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/mediarepo/mediarepo/thumbnails/pngscale"
)

// rawPNG writes a PNG by hand, for what image/png never writes: gray at 1, 2
// and 4 bits, tRNS keys. rows are the unfiltered rows; each gets filter f
// (0-4, cycled when f is -1).
func rawPNG(w, h int, depth int, colorType byte, rows [][]byte, f int, extra ...[]byte) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc32.Update(crc32.ChecksumIEEE([]byte(typ)), crc32.IEEETable, data))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), colorType
	chunk("IHDR", ihdr)
	for i := 0; i+1 < len(extra); i += 2 {
		chunk(string(extra[i]), extra[i+1])
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for y, row := range rows {
		filter := f
		if f < 0 {
			filter = y % 5
		}
		zw.Write([]byte{byte(filter)})
		zw.Write(filterRow(byte(filter), row, prevRow(rows, y), max(1, depth*channels(colorType)/8)))
	}
	zw.Close()
	// Two IDAT chunks, as encoders that stream write them.
	data := z.Bytes()
	chunk("IDAT", data[:len(data)/2])
	chunk("IDAT", data[len(data)/2:])
	chunk("IEND", nil)
	return out.Bytes()
}

func channels(ct byte) int { return map[byte]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct] }

func prevRow(rows [][]byte, y int) []byte {
	if y == 0 {
		return make([]byte, len(rows[0]))
	}
	return rows[y-1]
}

func filterRow(f byte, row, prev []byte, bpp int) []byte {
	out := make([]byte, len(row))
	left := func(i int) int {
		if i < bpp {
			return 0
		}
		return int(row[i-bpp])
	}
	upLeft := func(i int) int {
		if i < bpp {
			return 0
		}
		return int(prev[i-bpp])
	}
	for i := range row {
		var pred int
		switch f {
		case 1:
			pred = left(i)
		case 2:
			pred = int(prev[i])
		case 3:
			pred = (left(i) + int(prev[i])) / 2
		case 4:
			a, b, c := left(i), int(prev[i]), upLeft(i)
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				pred = a
			case pb <= pc:
				pred = b
			default:
				pred = c
			}
		}
		out[i] = row[i] - byte(pred)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func encode(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// corpus is PNGs of every colour type and depth, odd sizes.
func corpus(t *testing.T) map[string][]byte {
	const w, h = 53, 37
	r := rand.New(rand.NewPCG(1, 2))
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	opaque := image.NewRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	gray16 := image.NewGray16(image.Rect(0, 0, w, h))
	wide := image.NewNRGBA64(image.Rect(0, 0, w, h))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 128}, color.NRGBA{0, 0, 0, 0}, color.NRGBA{9, 200, 9, 255}})
	pal256 := image.NewPaletted(image.Rect(0, 0, w, h), nil)
	for i := range 256 {
		pal256.Palette = append(pal256.Palette, color.NRGBA{uint8(i), uint8(255 - i), uint8(i * 3), uint8(i | 1)})
	}
	for y := range h {
		for x := range w {
			v := uint8(x*4 + y*2)
			nrgba.SetNRGBA(x, y, color.NRGBA{v, uint8(y * 7), uint8(r.Uint32()), uint8(x * 5)})
			opaque.SetRGBA(x, y, color.RGBA{v, uint8(y * 6), uint8(r.Uint32()), 255})
			gray.SetGray(x, y, color.Gray{v})
			gray16.SetGray16(x, y, color.Gray16{uint16(x*1200 + y*99)})
			wide.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 1000), uint16(y * 1700), uint16(r.Uint32()), uint16(x*1000 + 3000)})
			pal.SetColorIndex(x, y, uint8((x+y)%4))
			pal256.SetColorIndex(x, y, uint8(r.Uint32()))
		}
	}
	files := map[string][]byte{
		"NRGBA": encode(t, nrgba), "opaque RGB": encode(t, opaque), "gray": encode(t, gray), "gray 16-bit": encode(t, gray16),
		"NRGBA 16-bit": encode(t, wide), "paletted 2-bit with alpha": encode(t, pal), "paletted 8-bit": encode(t, pal256),
	}
	for _, depth := range []int{1, 2, 4} {
		var rows [][]byte
		for y := range h {
			row := make([]byte, (w*depth+7)/8)
			for x := range w {
				v := (x + y) % (1 << depth)
				row[x*depth/8] |= byte(v << (8 - depth - x*depth%8))
			}
			rows = append(rows, row)
		}
		files["gray "+string(rune('0'+depth))+"-bit with tRNS"] = rawPNG(w, h, depth, 0, rows, -1, []byte("tRNS"), []byte{0, 1})
	}
	var rows [][]byte
	for y := range h {
		row := make([]byte, w*3)
		for x := range w {
			row[3*x], row[3*x+1], row[3*x+2] = byte(x), byte(y), byte((x*y)%3)
		}
		rows = append(rows, row)
	}
	files["RGB with a tRNS key, every filter"] = rawPNG(w, h, 8, 2, rows, -1, []byte("tRNS"), []byte{0, 5, 0, 5, 0, 1})
	return files
}

// boxNRGBA is image/png's decode as 8-bit NRGBA, box-shrunk by k the way the
// decoder does it: colour weighted by alpha, truncating.
func boxNRGBA(img image.Image, k int) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, (b.Dx()+k-1)/k, (b.Dy()+k-1)/k))
	for oy := 0; oy < out.Rect.Dy(); oy++ {
		for ox := 0; ox < out.Rect.Dx(); ox++ {
			var r, g, bl, a, n uint64
			for y := oy * k; y < min((oy+1)*k, b.Dy()); y++ {
				for x := ox * k; x < min((ox+1)*k, b.Dx()); x++ {
					c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
					if _, wide := img.(*image.NRGBA64); wide { // image/png's 16 bits, kept to their high byte
						c64 := img.(*image.NRGBA64).NRGBA64At(x, y)
						c = color.NRGBA{uint8(c64.R >> 8), uint8(c64.G >> 8), uint8(c64.B >> 8), uint8(c64.A >> 8)}
					}
					r, g, bl, a, n = r+uint64(c.R)*uint64(c.A), g+uint64(c.G)*uint64(c.A), bl+uint64(c.B)*uint64(c.A), a+uint64(c.A), n+1
				}
			}
			if a > 0 {
				out.SetNRGBA(ox, oy, color.NRGBA{uint8(r / a), uint8(g / a), uint8(bl / a), uint8(a / n)})
			}
		}
	}
	return out
}

func TestMatchesImagePNG(t *testing.T) {
	for name, data := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			want, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("image/png: %v", err)
			}
			for _, k := range []int{1, 2, 3, 8, 60} {
				got, err := pngscale.Decode(context.Background(), bytes.NewReader(data), k)
				if err != nil {
					t.Fatalf("k=%d: %v", k, err)
				}
				ref := boxNRGBA(want, k)
				if got.Rect != ref.Rect {
					t.Fatalf("k=%d: %v, want %v", k, got.Rect, ref.Rect)
				}
				if !bytes.Equal(got.Pix, ref.Pix) {
					t.Errorf("k=%d: pixels differ from a box-shrink of image/png's output", k)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	good := corpus(t)["NRGBA"]
	interlaced := bytes.Clone(good)
	interlaced[28] = 1 // IHDR's interlace method
	// The IHDR CRC no longer matches: fix it.
	binary.BigEndian.PutUint32(interlaced[29:], crc32.ChecksumIEEE(interlaced[12:29]))
	if _, err := pngscale.Decode(context.Background(), bytes.NewReader(interlaced), 2); !errors.Is(err, pngscale.ErrUnsupported) {
		t.Errorf("interlaced = %v, want ErrUnsupported", err)
	}
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)/2] ^= 0xff
	for name, data := range map[string][]byte{"truncated": good[:len(good)/2], "bad CRC": badCRC, "not a PNG": []byte("GIF89a")} {
		if _, err := pngscale.Decode(context.Background(), bytes.NewReader(data), 2); err == nil || errors.Is(err, pngscale.ErrUnsupported) {
			t.Errorf("%s = %v, want a malformed-file error", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	t := &testing.T{}
	for _, data := range corpus(t) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		got, err := pngscale.Decode(context.Background(), bytes.NewReader(data), 1)
		want, werr := png.Decode(bytes.NewReader(data))
		if err != nil || werr != nil {
			return
		}
		if ref := boxNRGBA(want, 1); !bytes.Equal(got.Pix, ref.Pix) {
			t.Fatal("pixels differ from image/png's")
		}
		pngscale.Decode(context.Background(), bytes.NewReader(data), 3)
	})
}
