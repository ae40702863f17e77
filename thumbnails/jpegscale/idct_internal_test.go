package jpegscale

import (
	"math/rand/v2"
	"testing"
)

// idct is the definition, for the tests: it turns the dequantised coefficients of one block (natural order) into
// n x n samples at out[y*stride+x], level-shifted and clamped to 0-255.
// Rows of zero coefficients are skipped, which is most of them in photos.
func idct(coef *[64]int32, n int, out []byte, stride int) {
	if n == 1 {
		out[0] = clamp(float32(coef[0])/8 + 128)
		return
	}
	b := bases[n]
	var tmp [8][8]float32 // [v][x]: each row of frequencies turned into n samples
	var rows [8]bool
	for v := range 8 {
		row := coef[v*8 : v*8+8]
		last := -1
		for u := 7; u >= 0; u-- {
			if row[u] != 0 {
				last = u
				break
			}
		}
		if last < 0 {
			continue
		}
		rows[v] = true
		for x := range n {
			s := float32(0)
			for u := 0; u <= last; u++ {
				s += float32(row[u]) * b[x][u]
			}
			tmp[v][x] = s
		}
	}
	for y := range n {
		o := out[y*stride : y*stride+n]
		for x := range n {
			s := float32(0)
			for v := range 8 {
				if rows[v] {
					s += b[y][v] * tmp[v][x]
				}
			}
			o[x] = clamp(s + 128)
		}
	}
}

func TestIDCTAANMatchesTheDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	worst := 0
	for range 2000 {
		var coef [64]int32
		for k := range coef {
			if r.IntN(3) == 0 {
				coef[k] = int32(r.IntN(400) - 200)
			}
		}
		coef[0] = int32(r.IntN(2000) - 1000)
		var want, got [64]byte
		idct(&coef, 8, want[:], 8)
		idctAAN(&coef, got[:], 8)
		for i := range got {
			d := int(got[i]) - int(want[i])
			worst = max(worst, d, -d)
		}
	}
	if worst > 1 {
		t.Errorf("the AAN inverse DCT differs by %d from the definition, want at most 1", worst)
	}
}
