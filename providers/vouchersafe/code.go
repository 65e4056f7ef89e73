// The decryption code as an image, which the seed asks for on sites
// without https (so the code need not travel as text). The glyphs are
// golang.org/x/image's basicfont, drawn large and without smoothing.
package vouchersafe

import (
	"bytes"
	"image"
	"image/color"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// codeScale is how many pixels each font pixel becomes.
const codeScale = 4

// CodePNG draws the code as a PNG image: dark digits on white, in groups of
// four for reading aloud.
func CodePNG(code string) ([]byte, error) {
	text := group(code)
	face := basicfont.Face7x13
	w := font.MeasureString(face, text).Ceil() + 8
	h := face.Metrics().Height.Ceil() + 6
	small := image.NewGray(image.Rect(0, 0, w, h))
	for i := range small.Pix {
		small.Pix[i] = 0xff
	}
	d := font.Drawer{Dst: small, Src: image.NewUniform(color.Gray{0x10}), Face: face,
		Dot: fixed.P(4, 3+face.Metrics().Ascent.Ceil())}
	d.DrawString(text)
	big := image.NewGray(image.Rect(0, 0, w*codeScale, h*codeScale))
	for y := 0; y < h*codeScale; y++ {
		for x := 0; x < w*codeScale; x++ {
			big.Pix[y*big.Stride+x] = small.Pix[(y/codeScale)*small.Stride+x/codeScale]
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, big); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// group spaces a code in groups of four: 3f9a 6c0e 5b2d.
func group(code string) string {
	var b []byte
	for i := 0; i < len(code); i++ {
		if i > 0 && i%4 == 0 {
			b = append(b, ' ')
		}
		b = append(b, code[i])
	}
	return string(b)
}
