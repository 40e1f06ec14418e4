package experiment

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot is a PNG written next to the markdown.
type Plot struct {
	File  string `json:"file"` // base name, relative to the markdown
	Title string `json:"title"`
}

// figure is one PNG: panels of lines against the skew, one line per
// policy.
type figure struct {
	suffix string // file name: <name>-<suffix>.png
	title  string
	ylabel string
	// value is a panel's y at a policy and condition; ok false: no point.
	value func(ix index, p Policy, c condition) (float64, bool)
	// contrast: one row of panels (the value compares the orders itself),
	// a log y axis and a reference line at 1.
	contrast bool
}

// cellValue makes a figure's value from a figure of one cell.
func cellValue(f func(*Result) float64) func(index, Policy, condition) (float64, bool) {
	return func(ix index, p Policy, c condition) (float64, bool) {
		r := ix.get(p, c)
		if r == nil {
			return 0, false
		}
		v := f(r)
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	}
}

var figures = []figure{
	{
		suffix: "throughput", title: "Committed transactions per second against skew", ylabel: "committed/s",
		value: cellValue(func(r *Result) float64 { return r.CommitsPerSec }),
	},
	{
		suffix: "aborts", title: "Abort rate: the share of attempts aborted (refused, timed out, ...)", ylabel: "aborts (% of attempts)",
		value: cellValue(func(r *Result) float64 { return 100 * r.AbortRate }),
	},
	{
		suffix: "p99", title: "p99 latency (all operations) against skew", ylabel: "p99 latency (ms)",
		value: cellValue(func(r *Result) float64 { return float64(r.P99) / 1e3 }),
	},
	{
		suffix: "order", title: "Request order against ascending order: committed/s of request / of ascending", ylabel: "request / ascending (log)",
		contrast: true,
		value: func(ix index, p Policy, c condition) (float64, bool) {
			a, r := c, c
			a.Order, r.Order = OrderAscending, OrderRequest
			ra, rr := ix.get(p, a), ix.get(p, r)
			if ra == nil || rr == nil || ra.CommitsPerSec <= 0 || rr.CommitsPerSec <= 0 {
				return 0, false
			}
			return rr.CommitsPerSec / ra.CommitsPerSec, true
		},
	},
}

// palette colours the policies by rank, for the schemes to come too.
var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, // brown
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff}, // pink
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}, // grey
}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

func policyColor(p Policy) color.Color      { return palette[p.rank()%len(palette)] }
func policyGlyph(p Policy) draw.GlyphDrawer { return glyphs[p.rank()%len(glyphs)] }

var sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

func textStyle(size vg.Length, xa text.XAlignment, ya text.YAlignment) text.Style {
	return text.Style{
		Color:   color.Black,
		Font:    font.From(sansFont, size),
		XAlign:  xa,
		YAlign:  ya,
		Handler: plot.DefaultTextHandler,
	}
}

// WritePlots writes the figures into dir and returns them; the order
// contrast only when the run has both orders.
func WritePlots(dir, name string, results []Result) ([]Plot, error) {
	l := newLayout(results)
	var plots []Plot
	for _, f := range figures {
		if f.contrast && !(slices.Contains(l.orders, OrderAscending) && slices.Contains(l.orders, OrderRequest)) {
			continue
		}
		file := name + "-" + f.suffix + ".png"
		if err := l.write(filepath.Join(dir, file), f); err != nil {
			return plots, fmt.Errorf("%s: %w", file, err)
		}
		plots = append(plots, Plot{File: file, Title: f.title})
	}
	return plots, nil
}

// layout is what a run's figures show: the panels and the x axis.
type layout struct {
	ix       index
	orders   []Order
	columns  []condition // transport, legs, servers and workers of each column
	skews    []Skew      // the x axis: θ ascending, then the hot sets
	policies []Policy
}

func newLayout(results []Result) layout {
	l := layout{ix: newIndex(results)}
	for _, r := range results {
		if !r.Ran {
			continue
		}
		if !slices.Contains(l.orders, r.Order) {
			l.orders = append(l.orders, r.Order)
		}
		col := condition{Transport: r.Transport, Store: r.Store, Servers: r.Servers, Workers: r.Workers, Legs: r.Legs}
		if !slices.Contains(l.columns, col) {
			l.columns = append(l.columns, col)
		}
		if !slices.Contains(l.skews, r.Skew) {
			l.skews = append(l.skews, r.Skew)
		}
		if !slices.Contains(l.policies, r.Policy) {
			l.policies = append(l.policies, r.Policy)
		}
	}
	slices.SortFunc(l.orders, func(a, b Order) int { return slices.Index(Orders, a) - slices.Index(Orders, b) })
	slices.SortFunc(l.columns, func(a, b condition) int {
		return cmp.Or(cmp.Compare(slices.Index(Transports, a.Transport), slices.Index(Transports, b.Transport)),
			cmp.Compare(slices.Index(Stores, cmp.Or(a.Store, StoreMemory)), slices.Index(Stores, cmp.Or(b.Store, StoreMemory))),
			cmp.Compare(a.Legs, b.Legs), cmp.Compare(a.Servers, b.Servers), cmp.Compare(a.Workers, b.Workers))
	})
	slices.SortFunc(l.skews, func(a, b Skew) int {
		if a.OnThetaAxis() != b.OnThetaAxis() {
			if a.OnThetaAxis() {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Theta, b.Theta), cmp.Compare(a.Spec, b.Spec))
	})
	slices.SortFunc(l.policies, func(a, b Policy) int { return cmp.Compare(a.rank(), b.rank()) })
	return l
}

// Figure geometry.
const (
	panelW  = 4.6 * vg.Inch
	panelH  = 3.6 * vg.Inch
	headerH = 1.05 * vg.Inch
	dpi     = 110
)

// write draws f: one row per lock order (one row for the contrast), one
// column per servers × workers, the skew on x, a line per policy.
func (l layout) write(path string, f figure) error {
	rows := l.orders
	if f.contrast {
		rows = []Order{OrderRequest}
	}
	cols := max(len(l.columns), 1)
	figW := max(panelW*vg.Length(cols), 9*vg.Inch)
	figH := headerH + panelH*vg.Length(max(len(rows), 1))
	img := vgimg.NewWith(vgimg.UseWH(figW, figH), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)

	// Header: the title, and under it the policies' legend on the right.
	dc.FillText(textStyle(16, draw.XLeft, draw.YCenter), vg.Point{X: 0.3 * vg.Inch, Y: figH - 0.3*vg.Inch}, f.title)
	ls := textStyle(12, draw.XLeft, draw.YCenter)
	seg, gap := 0.35*vg.Inch, 0.1*vg.Inch
	x, y := figW-0.3*vg.Inch, figH-0.75*vg.Inch
	for _, pol := range slices.Backward(l.policies) {
		x -= ls.Width(string(pol))
		dc.FillText(ls, vg.Point{X: x, Y: y}, string(pol))
		x -= gap + seg
		style := draw.LineStyle{Color: policyColor(pol), Width: vg.Points(2)}
		dc.StrokeLine2(style, x, y, x+seg, y)
		policyGlyph(pol).DrawGlyph(&dc, draw.GlyphStyle{Color: policyColor(pol), Radius: vg.Points(3.5), Shape: policyGlyph(pol)}, vg.Point{X: x + seg/2, Y: y})
		x -= 2 * gap
	}
	if len(l.columns) == 0 || len(rows) == 0 || len(l.skews) == 0 {
		return savePNG(path, img)
	}
	panels := make([][]*plot.Plot, len(rows))
	for i, o := range rows {
		panels[i] = make([]*plot.Plot, len(l.columns))
		for j, col := range l.columns {
			p, err := l.panel(f, o, col)
			if err != nil {
				return err
			}
			panels[i][j] = p
		}
	}
	body := draw.Crop(dc, 0, 0, 0, -headerH)
	tiles := draw.Tiles{
		Rows: len(rows), Cols: len(l.columns),
		PadX: 0.3 * vg.Inch, PadY: 0.3 * vg.Inch,
		PadLeft: 0.15 * vg.Inch, PadRight: 0.25 * vg.Inch, PadBottom: 0.15 * vg.Inch, PadTop: 0.05 * vg.Inch,
	}
	canvases := plot.Align(panels, tiles, body)
	for i := range panels {
		for j := range panels[i] {
			panels[i][j].Draw(canvases[i][j])
		}
	}
	return savePNG(path, img)
}

// panel draws one lock order and servers × workers column.
func (l layout) panel(f figure, o Order, col condition) (*plot.Plot, error) {
	p := plot.New()
	at := fmt.Sprintf("%s, %d legs, %d servers, %d workers", where(col.Transport, col.Store), col.Legs, col.Servers, col.Workers)
	p.Title.Text = fmt.Sprintf("%s order; %s", o, at)
	if f.contrast {
		p.Title.Text = at
	}
	p.Title.TextStyle.Font = font.From(sansFont, 13)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "skew (Zipf θ; hot account)"
	p.Y.Label.Text = f.ylabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sansFont, 11)
		ax.Tick.Label.Font = font.From(sansFont, 10)
	}
	names := make([]string, len(l.skews))
	for i, sk := range l.skews {
		names[i] = sk.Label()
		if sk.OnThetaAxis() {
			names[i] = fmtTheta(sk.Theta)
		}
	}
	p.NominalX(names...)
	p.Add(&plotter.Grid{Horizontal: plotter.DefaultGridLineStyle, Vertical: plotter.DefaultGridLineStyle})

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pol := range l.policies {
		var xys plotter.XYs
		for i, sk := range l.skews {
			c := condition{Transport: col.Transport, Store: col.Store, Order: o, Skew: sk, Servers: col.Servers, Workers: col.Workers, Legs: col.Legs}
			if v, ok := f.value(l.ix, pol, c); ok {
				xys = append(xys, plotter.XY{X: float64(i), Y: v})
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color = policyColor(pol)
		line.Width = vg.Points(1.8)
		points.Color = policyColor(pol)
		points.Shape = policyGlyph(pol)
		points.Radius = vg.Points(3.5)
		p.Add(line, points)
	}
	p.X.Min, p.X.Max = -0.3, float64(len(l.skews))-0.7
	switch {
	case f.contrast:
		if math.IsInf(lo, 0) {
			lo, hi = 1, 1
		}
		lo, hi = min(lo, 1)/1.5, max(hi, 1)*1.5
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = lo, hi
		one := plotter.NewFunction(func(float64) float64 { return 1 })
		one.Color = color.Gray{Y: 0x60}
		one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(one)
	default:
		p.Y.Tick.Marker = cleanTicks{}
		p.Y.Min = 0
		p.Y.Max = 1
		if hi > 0 && !math.IsInf(hi, 0) {
			p.Y.Max = hi * 1.08
		}
	}
	return p, nil
}

// cleanTicks are plot.DefaultTicks labelled without trailing zeros
// ("2500", not "2500.00").
type cleanTicks struct{}

func (cleanTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Label != "" {
			t.Label = strconv.FormatFloat(math.Round(t.Value*1e6)/1e6, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

func savePNG(path string, img *vgimg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
