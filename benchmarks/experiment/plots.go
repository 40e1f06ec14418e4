package main

import (
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
	File  string // base name, relative to the markdown
	Title string
}

// metric is what one figure shows.
type metric struct {
	suffix   string // file name: <name>-<suffix>.png
	title    string
	ylabel   string
	value    func(Result) float64
	label    func(float64) string // the value printed over a bar
	policies []Policy
	fixedMax float64 // > 0: the y axis runs to it in every panel
	integer  bool    // counts: ticks on whole numbers only
}

var metrics = []metric{
	{
		suffix: "throughput", title: "Successful transfers per second", ylabel: "ok transfers/s",
		value: func(r Result) float64 { return r.OKTransfersPerSec },
		label: compact,
	},
	{
		suffix: "p99", title: "p99 latency (all operations)", ylabel: "p99 latency (ms)",
		value: func(r Result) float64 { return float64(r.P99) / 1e3 },
		label: func(v float64) string {
			if v < 10 {
				return strconv.FormatFloat(v, 'f', 1, 64)
			}
			return strconv.FormatFloat(v, 'f', 0, 64)
		},
	},
	{
		suffix: "refusals", title: "Refusal rate: share of requests answered 403 LOCKED_ACCOUNT", ylabel: "refusals (% of requests)",
		value: func(r Result) float64 { return 100 * r.RefusalRate },
		label: func(v float64) string { return fmtPct(v / 100) },
	},
	{
		suffix: "timeouts", title: "Wait timeouts: waits for a lock that ran out (403 after LockWait)", ylabel: "wait timeouts (count)",
		value:    func(r Result) float64 { return float64(r.WaitTimeouts) },
		label:    compact,
		policies: []Policy{PolicyWait, PolicyWaitLease},
		integer:  true,
	},
}

var policyColors = map[Policy]color.Color{
	PolicyFailFast:  color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	PolicyWait:      color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	PolicyWaitLease: color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
}

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

// WritePlots writes one PNG per metric into dir and returns them.
func WritePlots(dir, name string, results []Result) ([]Plot, error) {
	var plots []Plot
	for _, m := range metrics {
		file := name + "-" + m.suffix + ".png"
		if err := writeFigure(filepath.Join(dir, file), m, results); err != nil {
			return plots, fmt.Errorf("%s: %w", file, err)
		}
		plots = append(plots, Plot{File: file, Title: m.title})
	}
	return plots, nil
}

// Figure size.
const (
	figW       = 14 * vg.Inch
	figH       = 8.5 * vg.Inch
	headerH    = 0.75 * vg.Inch
	dpi        = 110
	barWidthPt = 22
)

// writeFigure draws m as a grid of panels: one row per lock order, one
// column per skew, business servers on x, a bar per policy.
func writeFigure(path string, m metric, results []Result) error {
	var (
		orders  []Order
		skews   []Skew
		servers []int
	)
	for _, r := range results {
		if r.Report == nil {
			continue
		}
		if !slices.Contains(orders, r.Order) {
			orders = append(orders, r.Order)
		}
		if !slices.Contains(skews, r.Skew) {
			skews = append(skews, r.Skew)
		}
		if !slices.Contains(servers, r.Servers) {
			servers = append(servers, r.Servers)
		}
	}
	slices.SortFunc(orders, func(a, b Order) int { return slices.Index(Orders, a) - slices.Index(Orders, b) })
	slices.SortFunc(skews, func(a, b Skew) int { return slices.Index(Skews, a) - slices.Index(Skews, b) })
	slices.Sort(servers)
	policies := m.policies
	if policies == nil {
		policies = Policies
	}
	ix := newIndex(results)

	img := vgimg.NewWith(vgimg.UseWH(figW, figH), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)

	// Header: the title on the left, the policies' legend on the right.
	title := textStyle(18, draw.XLeft, draw.YCenter)
	dc.FillText(title, vg.Point{X: 0.3 * vg.Inch, Y: figH - headerH/2}, m.title)
	// The legend, in a row at the right of the header.
	ls := textStyle(14, draw.XLeft, draw.YCenter)
	box := 0.3 * vg.Inch
	gap := 0.12 * vg.Inch
	x := figW - 0.3*vg.Inch
	y := figH - headerH/2
	for _, pol := range slices.Backward(policies) {
		x -= ls.Width(string(pol))
		dc.FillText(ls, vg.Point{X: x, Y: y}, string(pol))
		x -= gap + box
		dc.FillPolygon(policyColors[pol], []vg.Point{
			{X: x, Y: y - box/3}, {X: x + box, Y: y - box/3}, {X: x + box, Y: y + box/3}, {X: x, Y: y + box/3},
		})
		x -= 2 * gap
	}

	if len(orders) == 0 || len(skews) == 0 {
		return savePNG(path, img)
	}
	panels := make([][]*plot.Plot, len(orders))
	for i, o := range orders {
		panels[i] = make([]*plot.Plot, len(skews))
		for j, sk := range skews {
			p, err := panel(m, ix, o, sk, servers, policies)
			if err != nil {
				return err
			}
			panels[i][j] = p
		}
	}
	body := draw.Crop(dc, 0, 0, 0, -headerH)
	tiles := draw.Tiles{
		Rows: len(orders), Cols: len(skews),
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

// panel draws one lock order and skew.
func panel(m metric, ix index, o Order, sk Skew, servers []int, policies []Policy) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s order, %s", o, sk.Name)
	p.Title.TextStyle.Font = font.From(sansFont, 14)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "business servers"
	p.Y.Label.Text = m.ylabel
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sansFont, 12)
		ax.Tick.Label.Font = font.From(sansFont, 11)
	}
	names := make([]string, len(servers))
	for i, n := range servers {
		names[i] = strconv.Itoa(n)
	}
	p.NominalX(names...)
	p.Y.Tick.Marker = cleanTicks{integer: m.integer}
	p.Add(&plotter.Grid{Horizontal: plotter.DefaultGridLineStyle})

	w := vg.Points(barWidthPt)
	ymax := 0.0
	for k, pol := range policies {
		vals := make(plotter.Values, len(servers))
		xys := make(plotter.XYs, len(servers))
		labels := make([]string, len(servers))
		for i, n := range servers {
			if r := ix.get(pol, condition{o, sk, n}); r != nil {
				vals[i] = m.value(*r)
				labels[i] = m.label(vals[i])
			} else {
				labels[i] = "–"
			}
			xys[i] = plotter.XY{X: float64(i), Y: vals[i]}
			ymax = max(ymax, vals[i])
		}
		bar, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bar.Color = policyColors[pol]
		bar.LineStyle = barOutline(pol)
		off := vg.Length(float64(k)-float64(len(policies)-1)/2) * w
		bar.Offset = off
		p.Add(bar)
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i] = textStyle(8, draw.XCenter, draw.YBottom)
		}
		lab.Offset = vg.Point{X: off, Y: 2}
		p.Add(lab)
	}
	// The groups' full width, so the grid lines span every bar.
	p.X.Min, p.X.Max = -0.5, float64(len(servers))-0.5
	p.Y.Min = 0
	switch {
	case m.fixedMax > 0:
		p.Y.Max = m.fixedMax
	case ymax > 0:
		p.Y.Max = ymax * 1.12 // room for the value labels
	default:
		p.Y.Max = 1
	}
	return p, nil
}

// compact prints a count or rate in at most five characters: 987, 12.3k.
func compact(v float64) string {
	switch {
	case v >= 99_950:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 9_999.5:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// cleanTicks are plot.DefaultTicks labelled without trailing zeros
// ("2500", not "2500.00"), and only on whole numbers when integer.
type cleanTicks struct{ integer bool }

func (c cleanTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if c.integer && t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = strconv.FormatFloat(math.Round(t.Value*1e6)/1e6, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

func barOutline(pol Policy) draw.LineStyle {
	return draw.LineStyle{Color: policyColors[pol], Width: vg.Points(0.5)}
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
