package jpegscale

import "fmt"

// scanInfo is one scan's header.
type scanInfo struct {
	comps          []*component
	ss, se, ah, al int
}

// scan reads a start-of-scan header and decodes the entropy-coded data that
// follows it, leaving d.pos at the marker that ends it.
func (d *decoder) scan(seg []byte) error {
	if !d.sawFrame {
		return fmt.Errorf("%w: scan before frame", errFormat)
	}
	if len(seg) < 1 {
		return fmt.Errorf("%w: SOS", errFormat)
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(d.comps) || len(seg) < 4+2*ns {
		return fmt.Errorf("%w: SOS of %d components", errFormat, ns)
	}
	s := scanInfo{}
	for i := range ns {
		id, tables := int(seg[1+2*i]), seg[2+2*i]
		var c *component
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return fmt.Errorf("%w: scan of unknown component %d", errFormat, id)
		}
		c.dc, c.ac = int(tables>>4), int(tables&15)
		if c.dc > 3 || c.ac > 3 {
			return fmt.Errorf("%w: table selector", errFormat)
		}
		s.comps = append(s.comps, c)
	}
	p := seg[1+2*ns:]
	s.ss, s.se, s.ah, s.al = int(p[0]), int(p[1]), int(p[2]>>4), int(p[2]&15)
	if d.progressive {
		if s.se > 63 || s.ss > s.se || (s.ss == 0 && s.se != 0) || (s.ss > 0 && ns != 1) || s.al > 13 {
			return fmt.Errorf("%w: progressive scan parameters", errFormat)
		}
	} else {
		s.ss, s.se, s.ah, s.al = 0, 63, 0, 0
	}
	if err := d.checkTables(s); err != nil {
		return err
	}
	br := &bitReader{data: d.data, pos: d.pos}
	d.scans++
	if err := d.decodeScan(br, s); err != nil {
		return err
	}
	d.pos = nextMarker(d.data, br.pos)
	return nil
}

// checkTables makes sure the tables a scan uses were defined.
func (d *decoder) checkTables(s scanInfo) error {
	for _, c := range s.comps {
		needDC := s.ss == 0 && s.ah == 0
		needAC := s.se > 0 && (!d.progressive || s.ss > 0)
		if (needDC && !d.huff[0][c.dc].defined) || (needAC && !d.huff[1][c.ac].defined) {
			return fmt.Errorf("%w: scan uses an undefined Huffman table", errFormat)
		}
	}
	return nil
}

// decodeScan walks the scan's MCUs (interleaved scans) or the component's
// blocks (single-component scans), with restarts.
func (d *decoder) decodeScan(br *bitReader, s scanInfo) error {
	for _, c := range s.comps {
		c.dcPred = 0
	}
	d.eobRun = 0
	mcusX, mcusY := d.mcusX, d.mcusY
	if len(s.comps) == 1 {
		// A single-component scan has one block per MCU and covers only the
		// component's own blocks, not the MCU padding.
		c := s.comps[0]
		mcusX = (ceilDiv(d.width*c.h, d.hmax) + 7) / 8
		mcusY = (ceilDiv(d.height*c.v, d.vmax) + 7) / 8
	}
	count := 0
	for my := 0; my < mcusY; my++ {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		for mx := 0; mx < mcusX; mx++ {
			if d.restart > 0 && count > 0 && count%d.restart == 0 {
				br.restart()
				for _, c := range s.comps {
					c.dcPred = 0
				}
				d.eobRun = 0
			}
			count++
			if err := d.decodeMCU(br, s, mx, my); err != nil {
				return err
			}
		}
		if br.overrun() {
			return errTruncated
		}
	}
	return nil
}

func (d *decoder) decodeMCU(br *bitReader, s scanInfo, mx, my int) error {
	if len(s.comps) == 1 {
		return d.decodeBlock(br, s, s.comps[0], mx, my)
	}
	for _, c := range s.comps {
		for by := 0; by < c.v; by++ {
			for bx := 0; bx < c.h; bx++ {
				if err := d.decodeBlock(br, s, c, mx*c.h+bx, my*c.v+by); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// decodeBlock decodes block (bx, by) of c: at once into its output samples
// for sequential files, into its stored coefficients for progressive ones.
func (d *decoder) decodeBlock(br *bitReader, s scanInfo, c *component, bx, by int) error {
	if !d.progressive {
		var zz [64]int32
		var nz [64]uint8
		n, err := d.sequential(br, c, &zz, &nz)
		if err != nil {
			return err
		}
		d.output(c, bx, by, &zz, nz[:n])
		return nil
	}
	blk := c.coef[(by*c.bw+bx)*64 : (by*c.bw+bx)*64+64]
	switch {
	case s.ss == 0 && s.ah == 0:
		return d.dcFirst(br, c, blk, s.al)
	case s.ss == 0:
		if br.bit() != 0 {
			blk[0] |= 1 << s.al
		}
		return nil
	case s.ah == 0:
		return d.acFirst(br, c, blk, s)
	}
	return d.acRefine(br, c, blk, s)
}

// sequential decodes one block of a baseline or extended sequential scan
// into zz, dequantised, in zigzag order, and lists where its nonzero
// coefficients are in nz; it returns how many there are. At 1/8 only the DC
// term is kept (the others are still read past).
func (d *decoder) sequential(br *bitReader, c *component, zz *[64]int32, nz *[64]uint8) (int, error) {
	q := &d.quant[c.tq]
	t, err := br.decode(&d.huff[0][c.dc])
	if err != nil || t > 11 {
		return 0, fmt.Errorf("%w: DC", errBadCode)
	}
	c.dcPred += br.receiveExtend(t)
	zz[0] = c.dcPred * q[0]
	n := 0
	if zz[0] != 0 {
		nz[0], n = 0, 1
	}
	keep := d.n > 1
	ac := &d.huff[1][c.ac]
	for k := 1; k < 64; {
		rs, err := br.decode(ac)
		if err != nil {
			return 0, err
		}
		r, sz := int(rs>>4), rs&15
		if sz == 0 {
			if r != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return 0, fmt.Errorf("%w: AC run past the block", errFormat)
		}
		v := br.receiveExtend(sz)
		if keep {
			zz[k] = v * q[k]
			nz[n] = uint8(k)
			n++
		}
		k++
	}
	return n, nil
}

func (d *decoder) dcFirst(br *bitReader, c *component, blk []int16, al int) error {
	t, err := br.decode(&d.huff[0][c.dc])
	if err != nil || t > 11 {
		return fmt.Errorf("%w: DC", errBadCode)
	}
	c.dcPred += br.receiveExtend(t)
	blk[0] = int16(c.dcPred << al)
	return nil
}

func (d *decoder) acFirst(br *bitReader, c *component, blk []int16, s scanInfo) error {
	if d.eobRun > 0 {
		d.eobRun--
		return nil
	}
	ac := &d.huff[1][c.ac]
	for k := s.ss; k <= s.se; {
		rs, err := br.decode(ac)
		if err != nil {
			return err
		}
		r, sz := int(rs>>4), rs&15
		if sz == 0 {
			if r != 15 {
				d.eobRun = 1<<r - 1
				if r > 0 {
					d.eobRun += int(br.bitsN(uint(r)))
				}
				return nil
			}
			k += 16
			continue
		}
		k += r
		if k > s.se {
			return fmt.Errorf("%w: AC run past the band", errFormat)
		}
		blk[k] = int16(br.receiveExtend(sz) << s.al)
		k++
	}
	return nil
}

// acRefine is a successive-approximation refinement scan of an AC band
// (T.81 G.1.2.3): one correction bit for every coefficient already nonzero,
// and new coefficients of plus or minus one at the new bit position.
func (d *decoder) acRefine(br *bitReader, c *component, blk []int16, s scanInfo) error {
	p1, m1 := int16(1)<<s.al, int16(-1)<<s.al
	k := s.ss
	if d.eobRun == 0 {
		ac := &d.huff[1][c.ac]
		for ; k <= s.se; k++ {
			rs, err := br.decode(ac)
			if err != nil {
				return err
			}
			r, sz := int(rs>>4), rs&15
			var value int16
			switch {
			case sz != 0:
				if sz != 1 {
					return fmt.Errorf("%w: refinement of size %d", errFormat, sz)
				}
				value = m1
				if br.bit() != 0 {
					value = p1
				}
			case r != 15:
				d.eobRun = 1 << r
				if r > 0 {
					d.eobRun += int(br.bitsN(uint(r)))
				}
			}
			if sz == 0 && r != 15 {
				break // the rest of the band is an end-of-band run
			}
			// Skip r coefficients that are still zero, refining the nonzero
			// ones passed on the way; the new value goes in the next zero.
			for ; k <= s.se; k++ {
				if blk[k] != 0 {
					refine(br, &blk[k], p1, m1)
					continue
				}
				if r == 0 {
					if value != 0 {
						blk[k] = value
					}
					break
				}
				r--
			}
		}
	}
	if d.eobRun > 0 {
		for ; k <= s.se; k++ {
			if blk[k] != 0 {
				refine(br, &blk[k], p1, m1)
			}
		}
		d.eobRun--
	}
	return nil
}

// refine applies one correction bit to a coefficient already nonzero.
func refine(br *bitReader, c *int16, p1, m1 int16) {
	if br.bit() != 0 && *c&p1 == 0 {
		if *c >= 0 {
			*c += p1
		} else {
			*c += m1
		}
	}
}

// output turns one block's dequantised coefficients (zigzag order, the
// nonzero ones at nz) into its output samples.
func (d *decoder) output(c *component, bx, by int, zz *[64]int32, nz []uint8) {
	if d.peak != nil {
		for _, k := range nz {
			*d.peak = max(*d.peak, zz[k], -zz[k])
		}
	}
	out := c.plane[by*d.n*c.stride+bx*d.n:]
	switch {
	case d.n == 1:
		out[0] = clamp(float32(zz[0])/8 + 128)
	case d.n < 8 || len(nz) <= 8:
		if d.n == 8 {
			idct8Sparse(zz, nz, out, c.stride)
			return
		}
		idctSparse(zz, nz, d.n, out, c.stride)
	default:
		var nat [64]int32
		for _, k := range nz {
			nat[zigzag[k]] = zz[k]
		}
		idctAAN(&nat, out, c.stride)
	}
}

// finish turns a progressive file's coefficients into samples.
func (d *decoder) finish() error {
	if !d.sawFrame || d.scans == 0 {
		return fmt.Errorf("%w: no image data", errFormat)
	}
	if !d.progressive {
		return nil
	}
	for i := range d.comps {
		c := &d.comps[i]
		q := &d.quant[c.tq]
		for by := 0; by < c.bh; by++ {
			if err := d.ctx.Err(); err != nil {
				return err
			}
			for bx := 0; bx < c.bw; bx++ {
				blk := c.coef[(by*c.bw+bx)*64 : (by*c.bw+bx)*64+64]
				var zz [64]int32
				var nz [64]uint8
				n := 0
				for k, v := range blk {
					if v != 0 {
						zz[k], nz[n] = int32(v)*q[k], uint8(k)
						n++
					}
				}
				d.output(c, bx, by, &zz, nz[:n])
			}
		}
		c.coef = nil // done with them
	}
	return nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
