// Package browser starts Debian's headless Chromium under chromedp, the one way the browser
// tests and the README's screenshots drive the console.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// Install is the command that installs the browser (scripts/setup.sh runs it as root).
const Install = "./scripts/setup.sh chromium   (as root; it runs apt-get install chromium)"

// Path finds the chromium binary, or says how to install it.
func Path() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium is not installed: install it with %s", Install)
}

// Options tunes a browser.
type Options struct {
	Width, Height int // the window; 1280×900 when zero
	// Mobile emulates a phone's touch screen and device pixel ratio.
	Mobile bool
}

// Start launches a headless Chromium with a fresh profile in a temporary directory and returns
// a chromedp context for its first tab; stop closes the browser and removes the profile.
func Start(ctx context.Context, o Options) (tab context.Context, stop func(), err error) {
	path, err := Path()
	if err != nil {
		return nil, nil, err
	}
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	profile, err := os.MkdirTemp("", "xsell-chromium-")
	if err != nil {
		return nil, nil, err
	}
	// The flags that work in a container as root: no sandbox (it needs user namespaces), no
	// GPU, and none of the background traffic to Google's services.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	stop = func() {
		cancelTab()
		cancelAlloc()
		os.RemoveAll(profile)
	}
	if err := chromedp.Do(tab); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting chromium: %w", err)
	}
	if o.Mobile {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(int64(o.Width), int64(o.Height), chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
			stop()
			return nil, nil, fmt.Errorf("emulating a phone: %w", err)
		}
	}
	return tab, stop, nil
}

// SignIn opens the console's sign-in page under base (http://host:port) and signs in with key.
func SignIn(tab context.Context, base, key string) error {
	return chromedp.Do(tab,
		chromedp.Navigate(base+"/console/signin"),
		chromedp.WaitVisible(chromedp.ID("api_key")),
		chromedp.SendKeys(chromedp.ID("api_key"), key),
		chromedp.Submit(chromedp.ID("api_key")),
		chromedp.WaitVisible(chromedp.CSS("nav[aria-label=Main]")),
	)
}
