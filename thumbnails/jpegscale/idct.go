package jpegscale

import "math"

// zigzag maps the order coefficients are coded in to their natural position
// in the 8x8 block (row*8+column).
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

// basis holds, for an output of n samples per block side (8, 4, 2 or 1),
// the weight of frequency u in output sample x: the 8-point inverse DCT
// basis function averaged over the 8/n input samples that x stands for.
// An output sample is therefore the mean of the full-size pixels it covers
// (before rounding), and at n = 1 it is the DC term alone.
type basis [8][8]float32 // [x][u], x < n

// bases are the tables for n = 8, 4, 2, 1; built once, never changed.
var bases = func() map[int]*basis {
	m := map[int]*basis{}
	for _, n := range []int{8, 4, 2, 1} {
		var b basis
		k := 8 / n
		for x := range n {
			for u := range 8 {
				cu := 1.0
				if u == 0 {
					cu = 1 / math.Sqrt2
				}
				sum := 0.0
				for i := x * k; i < (x+1)*k; i++ {
					sum += math.Cos(float64(2*i+1) * float64(u) * math.Pi / 16)
				}
				b[x][u] = float32(cu / 2 * sum / float64(k))
			}
		}
		m[n] = &b
	}
	return m
}()

// products holds, for an output of n samples per side, each coefficient's
// contribution to each output sample: products[k][y*n+x] =
// basis[y][v] * basis[x][u] for the coefficient k (zigzag order) at (v, u).
// A block's samples are the sum over its nonzero coefficients, which are few.
type products [64][64]float32

// productTables are the tables for n = 4 and 2; built once, never changed.
var productTables = func() map[int]*products {
	m := map[int]*products{}
	for _, n := range []int{4, 2} {
		var p products
		b := bases[n]
		for k := range 64 {
			v, u := int(zigzag[k])/8, int(zigzag[k])%8
			for y := range n {
				for x := range n {
					p[k][y*n+x] = b[y][v] * b[x][u]
				}
			}
		}
		m[n] = &p
	}
	return m
}()

// idctSparse writes the n x n samples (n = 4 or 2) of a block whose nonzero
// dequantised coefficients are coef at zigzag positions nz.
func idctSparse(coef *[64]int32, nz []uint8, n int, out []byte, stride int) {
	p := productTables[n]
	var acc [16]float32
	m := n * n
	for _, k := range nz {
		c := float32(coef[k])
		row := p[k][:m]
		for i := range row {
			acc[i] += c * row[i]
		}
	}
	for y := range n {
		o := out[y*stride : y*stride+n]
		for x := range o {
			o[x] = clamp(acc[y*n+x] + 128)
		}
	}
}

func clamp(v float32) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return byte(v + 0.5)
}

// idct8Sparse is idct at full size for a block of few nonzero coefficients
// (zigzag order, at nz): each adds its basis function.
func idct8Sparse(coef *[64]int32, nz []uint8, out []byte, stride int) {
	b := bases[8]
	var acc [64]float32
	for _, k := range nz {
		v, u := int(zigzag[k])/8, int(zigzag[k])%8
		c := float32(coef[k])
		for y := range 8 {
			cy := c * b[y][v]
			row := acc[y*8 : y*8+8]
			for x := range row {
				row[x] += cy * b[x][u]
			}
		}
	}
	for y := range 8 {
		o := out[y*stride : y*stride+8]
		for x := range o {
			o[x] = clamp(acc[y*8+x] + 128)
		}
	}
}

// aanScale are the factors the AAN inverse DCT wants its inputs multiplied
// by: 1 for frequency 0, sqrt(2) cos(k pi / 16) for the others.
var aanScale = func() [64]float32 {
	var f [8]float64
	for k := range 8 {
		f[k] = 1
		if k > 0 {
			f[k] = math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
		}
	}
	var s [64]float32
	for v := range 8 {
		for u := range 8 {
			s[v*8+u] = float32(f[v] * f[u] / 8)
		}
	}
	return s
}()

// idctAAN is the full-size inverse DCT of a block (natural order) by the
// Arai, Agui and Nakajima factorisation: 5 multiplications per row and per
// column instead of 64, for blocks with many coefficients.
func idctAAN(coef *[64]int32, out []byte, stride int) {
	var ws [64]float32
	for u := range 8 { // columns
		c := func(v int) float32 { return float32(coef[v*8+u]) * aanScale[v*8+u] }
		if coef[8+u] == 0 && coef[16+u] == 0 && coef[24+u] == 0 && coef[32+u] == 0 &&
			coef[40+u] == 0 && coef[48+u] == 0 && coef[56+u] == 0 {
			dc := c(0)
			for v := range 8 {
				ws[v*8+u] = dc
			}
			continue
		}
		var o [8]float32
		aan1D(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), &o)
		for v := range 8 {
			ws[v*8+u] = o[v]
		}
	}
	for y := range 8 { // rows
		r := ws[y*8 : y*8+8]
		var o [8]float32
		aan1D(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], &o)
		dst := out[y*stride : y*stride+8]
		for x := range dst {
			dst[x] = clamp(o[x] + 128)
		}
	}
}

// aan1D is the 8-point AAN inverse DCT of pre-scaled inputs.
func aan1D(i0, i1, i2, i3, i4, i5, i6, i7 float32, o *[8]float32) {
	// Even part.
	t10, t11 := i0+i4, i0-i4
	t13 := i2 + i6
	t12 := (i2-i6)*1.414213562 - t13
	e0, e3 := t10+t13, t10-t13
	e1, e2 := t11+t12, t11-t12
	// Odd part.
	z13, z10 := i5+i3, i5-i3
	z11, z12 := i1+i7, i1-i7
	t7 := z11 + z13
	t11o := (z11 - z13) * 1.414213562
	z5 := (z10 + z12) * 1.847759065
	t10o := z5 - z12*1.082392200
	t12o := z5 - z10*2.613125930
	t6 := t12o - t7
	t5 := t11o - t6
	t4 := t10o - t5
	o[0], o[7] = e0+t7, e0-t7
	o[1], o[6] = e1+t6, e1-t6
	o[2], o[5] = e2+t5, e2-t5
	o[3], o[4] = e3+t4, e3-t4
}
