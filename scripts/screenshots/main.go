// Command screenshots signs in to a running console with headless Chromium and saves the
// README's pictures: the experiments list, the experiment form and an experiment's results
// (and the list as a phone shows it). Run it against `make demo` (see README):
//
//	go run ./scripts/screenshots --url http://127.0.0.1:8090 --key dev-admin --experiment cross-sell-demo
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/xsell/xsell/internal/browser"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8090", "the server")
	key := flag.String("key", "dev-admin", "an admin key to sign in with")
	exp := flag.String("experiment", "cross-sell-demo", "the experiment whose results to show")
	out := flag.String("out", "docs/img", "where the PNG files go")
	pages := flag.String("pages", "", "instead of the README's pictures, these console paths, comma-separated (page-1.png, …)")
	flag.Parse()
	if err := run(*base, *key, *exp, *out, *pages); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

// shot is one picture: the page at path, once the element wait matches.
type shot struct {
	file, path, wait string
	height           int
	mobile, full     bool
}

func run(base, key, exp, out, pages string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The results page is long: its picture is the top 2,000 pixels (SRM, traffic, the
	// primary metric with its chart); the others are whole pages.
	shots := []shot{
		{"console-experiments.png", "/console/experiments", "table.list", 700, false, true},
		{"console-form.png", "/console/experiments/new", "form.experiment-form", 900, false, true},
		{"console-results.png", "/console/experiments/" + exp + "/results", "#metric-cross_sell_rate", 2000, false, false},
		{"console-experiments-phone.png", "/console/experiments", "table.list", 844, true, true},
	}
	if pages != "" {
		shots = nil
		for i, p := range strings.Split(pages, ",") {
			shots = append(shots, shot{fmt.Sprintf("page-%d.png", i+1), p, "main h1", 900, false, true})
		}
	}
	for _, s := range shots {
		o := browser.Options{Width: 1280, Height: s.height}
		if s.mobile {
			o = browser.Options{Width: 390, Height: s.height, Mobile: true}
		}
		tab, stop, err := browser.Start(ctx, o)
		if err != nil {
			return err
		}
		var png []byte
		err = browser.SignIn(tab, base, key)
		if err == nil {
			err = chromedp.Do(tab, chromedp.Navigate(base+s.path), chromedp.WaitVisible(chromedp.CSS(s.wait)))
		}
		switch {
		case err != nil:
		case s.full:
			png, err = chromedp.Run(tab, chromedp.FullScreenshot(100))
		default:
			png, err = chromedp.Run(tab, chromedp.CaptureScreenshot())
		}
		stop()
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if err := os.WriteFile(filepath.Join(out, s.file), png, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", filepath.Join(out, s.file))
	}
	return nil
}
