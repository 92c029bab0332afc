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
	"time"

	"github.com/chromedp/chromedp"

	"github.com/xsell/xsell/internal/browser"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8090", "the server")
	key := flag.String("key", "dev-admin", "an admin key to sign in with")
	exp := flag.String("experiment", "cross-sell-demo", "the experiment whose results to show")
	out := flag.String("out", "docs/img", "where the PNG files go")
	flag.Parse()
	if err := run(*base, *key, *exp, *out); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(base, key, exp, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	shots := []struct {
		file, path, wait string
		mobile           bool
	}{
		{"console-experiments.png", "/console/experiments", "table.list", false},
		{"console-form.png", "/console/experiments/new", "form.experiment-form", false},
		{"console-results.png", "/console/experiments/" + exp + "/results", "#metric-cross_sell_rate", false},
		{"console-experiments-phone.png", "/console/experiments", "table.list", true},
	}
	for _, s := range shots {
		o := browser.Options{Width: 1280, Height: 900}
		if s.mobile {
			o = browser.Options{Width: 390, Height: 844, Mobile: true}
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
		if err == nil {
			png, err = chromedp.Run(tab, chromedp.FullScreenshot(100))
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
