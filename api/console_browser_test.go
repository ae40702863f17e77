package api_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mediarepo/mediarepo/console"
)

type css = chromedp.CSS

// browser starts headless Chromium (Debian's chromium, installed by make
// test-deps) resolving example.org to loopback, and collects every console
// error or warning, exception, and logged error (CSP violations among them).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Flag("host-resolver-rules", "MAP example.org 127.0.0.1"),
		chromedp.Flag("no-sandbox", true), // the tests run as root
		chromedp.WindowSize(1200, 900),
	)
	if path := os.Getenv("MEDIAREPO_TEST_CHROMIUM"); path != "" {
		opts = append(opts, chromedp.ExecPath(path))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				problems = append(problems, fmt.Sprintf("console.%s %v", e.Type, e.Args))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("%s: %s (%s)", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium (make test-deps installs it): %v", err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), problems...) }
}

// shot saves a screenshot of the page as name.png when
// MEDIAREPO_CONSOLE_SCREENSHOTS names a directory (docs/console's).
func shot(name string) chromedp.Action[chromedp.Void] {
	dir := os.Getenv("MEDIAREPO_CONSOLE_SCREENSHOTS")
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if dir == "" {
			return nil
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	})
}

// text runs steps, then returns the text of sel.
func text(t *testing.T, ctx context.Context, sel string, steps ...chromedp.Action[chromedp.Void]) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatal(err)
	}
	s, err := chromedp.Run(tctx, chromedp.Text(css(sel)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConsoleInBrowser: in a real browser, a user's token is refused, an
// admin signs in, sees an upload's thumbnail on the recent page, quarantines
// it (after which its download answers 404 and the console shows a
// placeholder), a form whose CSRF token was removed is refused, and no page
// logs an error (no CSP violation, no script).
func TestConsoleInBrowser(t *testing.T) {
	ts := newTestServer(t, "sqlite", nil)
	id := ts.mustUpload(t, photo(t, 640, 480), "image/png", "sunset.png", withToken(carolToken))
	ts.mustUpload(t, photo(t, 640, 480), "image/png", "same.png", withToken(bobToken))
	ts.mustUpload(t, []byte("meeting notes"), "text/plain", "notes.txt", withToken(carolToken))
	u, _ := url.Parse(ts.URL)
	base := "http://example.org:" + u.Port() + console.Prefix
	ctx, problems := browser(t)

	got := text(t, ctx, ".error",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), bobToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(".error")),
	)
	if !strings.Contains(got, "Refused") {
		t.Errorf("a user's token: %q, want a refusal", got)
	}

	got = text(t, ctx, "main",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css("#token")),
		shot("login"),
		chromedp.SendKeys(css("#token"), aliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(".stats")),
		shot("overview"),
	)
	if !strings.Contains(got, "@carol:example.org") {
		t.Errorf("overview lacks the top uploader: %q", got)
	}

	thumb := fmt.Sprintf(`img[src="%s/thumbnail/example.org/%s"]`, console.Prefix, id)
	got = text(t, ctx, ".done",
		chromedp.Navigate(base+"/recent"),
		chromedp.WaitVisible(css(thumb)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`(() => { const i = document.querySelector(%q); return i.complete && i.naturalWidth === 96 || null; })()`, thumb),
				chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			return err
		}),
		shot("recent"),
		chromedp.Navigate(base+"/search?q="+url.QueryEscape("@carol:example.org")),
		chromedp.WaitVisible(css("table")),
		shot("search"),
		chromedp.Navigate(base+"/media/example.org/"+id),
		chromedp.WaitVisible(css("button.quarantine")),
		shot("media"),
		chromedp.Click(css("button.quarantine")),
		chromedp.WaitVisible(css(".done")),
	)
	if !strings.Contains(got, "quarantine") {
		t.Errorf("after the button: %q", got)
	}
	resp, body := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken))
	wantError(t, resp, body, 404, "M_NOT_FOUND")

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/recent"), chromedp.WaitVisible(css(".grid"))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, thumb))); err != nil || n != 0 {
		t.Errorf("the recent page still shows the quarantined picture (%d, %v)", n, err)
	}

	// A form posted without its CSRF token is refused, and changes nothing.
	got = text(t, ctx, ".error",
		chromedp.Navigate(base+"/media/example.org/"+id),
		chromedp.WaitVisible(css("button.unquarantine")),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { document.querySelector("button.unquarantine").form.querySelector('input[name="csrf"]').remove(); return true; })()`)(ctx, tg)
			return err
		}),
		chromedp.Click(css("button.unquarantine")),
		chromedp.WaitVisible(css(".error")),
	)
	if !strings.Contains(got, "CSRF") {
		t.Errorf("form without its CSRF token: %q, want a refusal", got)
	}
	if resp, _ := ts.do(t, "GET", "/_matrix/client/v1/media/download/example.org/"+id, nil, withToken(bobToken)); resp.StatusCode != 404 {
		t.Errorf("unquarantined by a form without CSRF token: %d", resp.StatusCode)
	}

	got = text(t, ctx, ".config",
		chromedp.Navigate(base+"/tasks"), chromedp.WaitVisible(css("table")), shot("tasks"),
		chromedp.Navigate(base+"/config"), chromedp.WaitVisible(css(".config")), shot("config"),
	)
	if strings.Contains(got, sharedToken) || !strings.Contains(got, "********") {
		t.Error("the configuration page shows the shared secret")
	}
	var unexpected []string
	for _, p := range problems() {
		// The two refusals above are answered 403 on purpose.
		if strings.Contains(p, "status of 403") && (strings.Contains(p, "/login)") || strings.Contains(p, "/unquarantine)")) {
			continue
		}
		unexpected = append(unexpected, p)
	}
	if len(unexpected) > 0 {
		t.Errorf("the browser logged problems:\n%s", strings.Join(unexpected, "\n"))
	}
}
