//! End to end in a real browser: the web client (`components/web`) served by the real host with
//! the real components, driven in headless Chromium through chromedriver (WebDriver, the
//! `fantoccini` crate). The issue's scenario runs at a phone viewport (390×844, mobile
//! emulation) and at 1280×800: two users, A and B, each in a browser of their own.
//!
//! Every step fails on a browser console error (chromedriver's browser log at SEVERE, which also
//! carries CSP violations and failed loads), and each main screen is saved as a PNG under
//! `target/web-screenshots/<viewport>/` for a person to look at. The first feed view's bytes,
//! time to first frame, layout shift and next-video buffering are measured with Chromium's
//! performance APIs and printed (`--nocapture`), not asserted on time.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`; `.ci/run` installs them); `CHROMEDRIVER` / `CHROMIUM` override the paths.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};
use tikspin_e2e::api::unique_name;
use tikspin_e2e::fixtures::fixtures_dir;
use tikspin_e2e::harness::TestHost;
use tikspin_e2e::{free_port, wait_until, workspace_root};

/// What must show as text, and never run, wherever a user can type it.
const XSS: &str = "<img src=x onerror=alert(1)>";

// ---- headers, without a browser -----------------------------------------------------------

#[test]
fn the_page_is_revalidated_its_assets_immutable_and_gzipped_with_a_csp() {
    let host = TestHost::app();
    let c = &host.client;
    let page = c.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").expect("a CSP on the page");
    for directive in ["default-src 'self'", "script-src 'self'", "object-src 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let html = page.text();
    assert!(!html.contains("<script>"), "no inline script: {html}");

    // The page names its assets by content hash; each is immutable and gzipped on request.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("assets/"))
        .collect();
    assert_eq!(assets.len(), 3, "icon, CSS and JS: {assets:?}");
    for asset in &assets {
        let (stem, _) = asset.rsplit_once('.').unwrap();
        let hash = stem.rsplit_once('.').map(|(_, h)| h).unwrap_or_default();
        assert!(hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{asset}");
        let plain = c.get(&format!("/{asset}"));
        assert_eq!(plain.status, 200, "{asset}");
        assert_eq!(
            plain.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(plain.header("content-encoding"), None, "no gzip unasked");
        if asset.ends_with(".js") || asset.ends_with(".css") {
            let gz = c.get_with(&format!("/{asset}"), &[("accept-encoding", "br, gzip")]);
            assert_eq!(gz.header("content-encoding"), Some("gzip"), "{asset}");
            assert_eq!(gz.header("vary"), Some("accept-encoding"));
            assert!(gz.body.len() < plain.body.len() / 2, "{asset} compresses");
            let refused = c.get_with(&format!("/{asset}"), &[("accept-encoding", "gzip;q=0")]);
            assert_eq!(refused.header("content-encoding"), None);
        }
    }
    // Revalidation: the ETag answers 304 with no body.
    let etag = page.header("etag").expect("an ETag").to_string();
    let again = c.get_with("/", &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // Unknown paths keep the API's JSON 404; a wrong method its 405; the API is untouched.
    for path in ["/douyin/nope/", "/assets/app.js", "/nope"] {
        let r = c.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["status_code"], 1009, "{path}: {}", r.text());
    }
    let r = c.post_empty("/");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(c.get("/openapi.json").status, 200);
    assert_eq!(c.get("/douyin/feed/").json()["status_code"], 0);
}

// ---- the browser --------------------------------------------------------------------------

/// chromedriver, started on a free port and killed by PID when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = free_port();
        // Its own process group: the browsers it starts are killed with it, even when a failed
        // step never closed their sessions.
        let child = Command::new(&binary)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}): apt-get install chromium chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "chromedriver did not listen on {port}");
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy)]
enum Viewport {
    Phone,
    Desktop,
}

impl Viewport {
    fn name(self) -> &'static str {
        match self {
            Viewport::Phone => "phone-390x844",
            Viewport::Desktop => "desktop-1280x800",
        }
    }
}

/// One user's browser: its own profile directory, the viewport, and the browser log kept.
struct Tab {
    b: Browser,
    driver: String,
    base: String,
    shots: PathBuf,
    who: &'static str,
    _profile: tempfile::TempDir,
}

async fn open(driver: &Driver, base: &str, viewport: Viewport, who: &'static str) -> Tab {
    let profile = tempfile::tempdir().unwrap();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    // As root here: no sandbox; and nothing that reaches for the (closed) network.
    let args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--lang=en-US".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut options = json!({ "binary": chromium });
    match viewport {
        Viewport::Phone => {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true },
                "userAgent": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0 Mobile Safari/537.36"
            });
        }
        // A window of 1280×800 leaves headless Chromium a smaller viewport; emulate the viewport.
        Viewport::Desktop => {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 1280, "height": 800, "pixelRatio": 1.0, "mobile": false, "touch": false }
            });
        }
    }
    options["args"] = json!(args);
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let b = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    let shots = workspace_root()
        .join("target/web-screenshots")
        .join(viewport.name());
    std::fs::create_dir_all(&shots).unwrap();
    Tab {
        b,
        driver: driver.url.clone(),
        base: base.to_string(),
        shots,
        who,
        _profile: profile,
    }
}

impl Tab {
    async fn goto(&self, hash: &str) {
        self.b.goto(&format!("{}/{hash}", self.base)).await.unwrap();
        self.no_console_errors().await;
    }

    async fn js(&self, script: &str) -> Value {
        self.b
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: {script}: {e}", self.who))
    }

    /// Polls a JavaScript expression until it is truthy; its value.
    async fn until(&self, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(&format!("return ({expr});")).await;
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText").await;
                self.shot(&format!("failed-{}", what.replace(' ', "-"))).await;
                panic!("{}: timed out waiting for {what} ({expr}); page: {page}", self.who);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn click(&self, css: &str) {
        let el = self.b.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await;
        el.unwrap_or_else(|e| panic!("{}: no {css}: {e}", self.who))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: cannot click {css}: {e}", self.who));
    }

    async fn type_in(&self, css: &str, text: &str) {
        let el = self.b.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await;
        el.unwrap_or_else(|e| panic!("{}: no {css}: {e}", self.who))
            .send_keys(text)
            .await
            .unwrap();
    }

    async fn shot(&self, name: &str) {
        if let Ok(png) = self.b.screenshot().await {
            let _ = std::fs::write(self.shots.join(format!("{}-{name}.png", self.who)), png);
        }
    }

    /// The browser log since the last call, which must hold no error. chromedriver keeps it
    /// (`goog:loggingPrefs`); fantoccini has no call for it, so it is read over plain HTTP.
    async fn no_console_errors(&self) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{}: browser console errors: {errors:#?}", self.who);
    }

    async fn console_errors(&self) -> Vec<Value> {
        let session = self.b.session_id().await.unwrap().unwrap();
        let url = format!("{}/session/{session}/se/log", self.driver);
        let log: Value = tokio::task::spawn_blocking(move || {
            ureq::post(&url)
                .header("content-type", "application/json")
                .send(r#"{"type":"browser"}"#)
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|body| serde_json::from_str(&body).ok())
                .unwrap_or(Value::Null)
        })
        .await
        .unwrap();
        let entries = log["value"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{}: chromedriver gave no browser log: {log}", self.who));
        entries.into_iter().filter(|e| e["level"] == "SEVERE").collect()
    }

    async fn register(&self) -> i64 {
        self.goto("#/login").await;
        self.type_in("input[name=username]", &unique_name(self.who)).await;
        self.type_in("input[name=password]", "secret-pass").await;
        self.click("#register").await;
        self.until("location.hash === '#/' && localStorage.getItem('tikspin.token')", "login")
            .await;
        let id = self.js("return Number(localStorage.getItem('tikspin.user_id'))").await;
        id.as_i64().unwrap()
    }

    /// The feed's slide of `video`, scrolled to.
    async fn to_slide(&self, video: i64) {
        let css = format!(".slide[data-video-id='{video}']");
        self.until(&format!("document.querySelector(\"{css}\")"), "the video in the feed")
            .await;
        self.js(&format!(
            "document.querySelector(\"{css}\").scrollIntoView({{block: 'start'}}); return 1"
        ))
        .await;
    }

    async fn close(self) {
        self.no_console_errors().await;
        let _ = self.b.close().await;
    }
}

/// Text of the elements matching `css`, as a JS expression.
fn texts(css: &str) -> String {
    format!("[...document.querySelectorAll(\"{css}\")].map(e => e.textContent)")
}

async fn scenario(base: &str, viewport: Viewport) {
    let driver = Driver::start();
    let a = open(&driver, base, viewport, "a").await;
    let b = open(&driver, base, viewport, "b").await;

    // B's first visit is the feed: measured with Chromium's performance APIs.
    b.goto("").await;
    // The console check itself: an error logged by the page is seen (and then cleared).
    b.js("console.error('tikspin console probe'); return 1").await;
    let probe = b.console_errors().await;
    assert!(probe.iter().any(|e| e["message"].as_str().unwrap_or_default().contains("tikspin console probe")), "{probe:?}");
    b.until("window.__tikspin && window.__tikspin.firstFrame", "the first frame").await;
    let first = b
        .js(r#"
            const nav = performance.getEntriesByType('navigation')[0];
            const res = performance.getEntriesByType('resource')
                .filter(r => /\/assets\/.*\.(js|css)$/.test(r.name));
            const shifts = performance.getEntriesByType('layout-shift')
                .filter(e => !e.hadRecentInput).reduce((s, e) => s + e.value, 0);
            return { html: nav.transferSize, assets: res.map(r => [r.name.split('/').pop(), r.transferSize, r.decodedBodySize]),
                     bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
                     first_frame_ms: window.__tikspin.firstFrame,
                     dom_content_loaded_ms: nav.domContentLoadedEventEnd, layout_shift: shifts,
                     h264: document.createElement('video').canPlayType('video/mp4; codecs="avc1.42E01E"') };
        "#)
        .await;
    println!("web perf [{}] first feed view: {first}", viewport.name());
    assert_eq!(first["h264"], "probably", "this Chromium must play H.264 MP4");
    b.shot("feed-first").await;

    // A registers and publishes portrait-3s.mp4 with a title that must stay text.
    let a_id = a.register().await;
    a.goto("#/publish").await;
    // First a file that is not a video: the API's message, and nothing published.
    let bad = fixtures_dir().join("not-a-video.mp4");
    a.type_in("input[name=data]", bad.to_str().unwrap()).await;
    a.type_in("input[name=title]", "not a video").await;
    a.click("form button[type=submit]").await;
    a.until("document.querySelector('.page .error').textContent.length > 0", "the refusal of a non-video").await;
    a.shot("publish-refused").await;
    a.js("document.querySelector('input[name=title]').value = ''; return 1").await;
    let file = fixtures_dir().join("portrait-3s.mp4");
    a.type_in("input[name=data]", file.to_str().unwrap()).await;
    a.type_in("input[name=title]", XSS).await;
    a.click("form button[type=submit]").await;
    a.until("document.querySelector('progress').value === 100 && /100%/.test(document.querySelector('.status').textContent)", "upload progress at 100%").await;
    a.shot("publish").await;
    // Then A's works list it, as processing until its cover is ready.
    a.until(&format!("location.hash === '#/u/{a_id}' && document.querySelector('.grid .tile')"), "A's works").await;
    let video = a.js("return Number(document.querySelector('.grid .tile').dataset.videoId)").await.as_i64().unwrap();
    a.until("document.querySelector('.grid .tile img') && document.querySelector('.grid .tile img').complete && document.querySelector('.grid .tile img').naturalWidth > 0", "the cover in A's works").await;
    // Only the real video: the refused upload left nothing.
    assert_eq!(a.js(&format!("return {}", texts(".grid .tile .cap"))).await, json!([XSS]));
    a.shot("profile").await;

    // The feed shows it, with its cover, and its <video> really plays.
    a.goto("").await;
    a.to_slide(video).await;
    let slide = format!(".slide[data-video-id='{video}']");
    a.until(&format!("(() => {{ const v = document.querySelector(\"{slide} video\"); return v.readyState >= 2 && v.currentTime > 0.2; }})()"), "the video playing").await;
    let t0 = a.js(&format!("return document.querySelector(\"{slide} video\").currentTime")).await.as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let t1 = a.js(&format!("return document.querySelector(\"{slide} video\").currentTime")).await.as_f64().unwrap();
    assert!(t1 != t0, "currentTime advances: {t0} → {t1}");
    let poster = a.js(&format!("return document.querySelector(\"{slide} video\").poster")).await;
    assert!(poster.as_str().unwrap().ends_with(&format!("/media/cover/{video}.jpg")), "{poster}");
    a.js(&format!("const i = new Image(); i.src = document.querySelector(\"{slide} video\").poster; window.__cover = i; return 1")).await;
    a.until("window.__cover.complete && window.__cover.naturalWidth > 0", "the cover image").await;
    // (The feed loops, so a short one lists the video twice: the first is the one on screen.)
    let title = a.js(&format!("return document.querySelector(\"{slide} .title\").textContent")).await;
    assert_eq!(title, json!(XSS));
    assert_eq!(a.js("return document.querySelectorAll('img[src=\"x\"]').length").await, json!(0));
    a.shot("feed").await;

    // B likes it: +1, and still +1 after a reload.
    let b_id = b.register().await;
    b.to_slide(video).await;
    let likes = format!("{slide} .like .count");
    let before: i64 = b.until(&format!("document.querySelector(\"{likes}\").textContent"), "the like count").await.as_str().unwrap().parse().unwrap();
    b.click(&format!("{slide} .like")).await;
    b.until(&format!("document.querySelector(\"{slide} .like\").getAttribute('aria-pressed') === 'true'"), "the like").await;
    assert_eq!(b.js(&format!("return document.querySelector(\"{likes}\").textContent")).await, json!((before + 1).to_string()));
    b.b.refresh().await.unwrap();
    b.to_slide(video).await;
    b.until(&format!("document.querySelector(\"{slide} .like\").getAttribute('aria-pressed') === 'true'"), "the like after a reload").await;
    assert_eq!(b.js(&format!("return document.querySelector(\"{likes}\").textContent")).await, json!((before + 1).to_string()));

    // B comments (the XSS text), A sees it.
    b.click(&format!("{slide} .comments")).await;
    b.until("document.querySelector('.drawer ol') && !/Loading/.test(document.querySelector('.drawer').textContent) && document.querySelector('.drawer ol .empty')", "the empty comment list").await;
    b.type_in(".drawer input[name=comment]", XSS).await;
    b.click(".drawer button[type=submit]").await;
    b.until(&format!("{}.length === 1", texts(".drawer .comment .text")), "B's comment").await;
    assert_eq!(b.js(&format!("return {}", texts(".drawer .comment .text"))).await, json!([XSS]));
    assert_eq!(b.js(&format!("return document.querySelector(\"{slide} .comments .count\").textContent")).await, json!("1"));
    // A refused comment shows the API's status_msg (too long: over 500 characters).
    b.js("document.querySelector('#toast').classList.remove('show'); const i = document.querySelector('.drawer input[name=comment]'); i.removeAttribute('maxlength'); i.value = 'x'.repeat(501); return 1").await;
    b.click(".drawer button[type=submit]").await;
    b.until("document.querySelector('#toast.show') && document.querySelector('#toast').textContent.length > 0", "the refusal's message").await;
    b.shot("comments").await;
    b.click(".drawer .close").await;

    a.goto("").await;
    a.to_slide(video).await;
    a.click(&format!("{slide} .comments")).await;
    a.until(&format!("{}.length === 1", texts(".drawer .comment .text")), "B's comment seen by A").await;
    assert_eq!(a.js(&format!("return {}", texts(".drawer .comment .text"))).await, json!([XSS]));
    a.click(".drawer .close").await;

    // They follow each other: B from the feed, A from B's profile.
    b.click(&format!("{slide} .side .follow")).await;
    b.until(&format!("document.querySelector(\"{slide} .side .follow\").getAttribute('aria-pressed') === 'true'"), "B following A").await;
    a.goto(&format!("#/u/{b_id}")).await;
    a.click(".profile-head .follow").await;
    a.until("document.querySelector('.profile-head .follow').getAttribute('aria-pressed') === 'true'", "A following B").await;
    a.click("[data-tab=followers]").await;
    a.until(&format!("document.querySelector(\".users a[href='#/u/{a_id}']\")"), "A among B's followers").await;
    a.shot("profile-other").await;

    // Chat: each sees the other's message exactly once, across several polls.
    a.goto("#/friends").await;
    a.until(&format!("document.querySelector(\".friend[data-user-id='{b_id}']\")"), "B in A's friends").await;
    a.click(&format!(".friend[data-user-id='{b_id}'] a.body")).await;
    b.goto(&format!("#/chat/{a_id}")).await;
    a.until("document.querySelector('.chat input[name=message]')", "A's chat").await;
    b.until("document.querySelector('.chat input[name=message]')", "B's chat").await;
    let hello = "hello B, 你好"; // chromedriver types only the BMP
    a.type_in(".chat input[name=message]", hello).await;
    a.click(".chat button[type=submit]").await;
    b.type_in(".chat input[name=message]", XSS).await;
    b.click(".chat button[type=submit]").await;
    b.until(&format!("{}.filter(t => t === {hello:?}).length === 1", texts(".msg:not(.mine)")), "A's message at B").await;
    a.until(&format!("{}.filter(t => t === {XSS:?}).length === 1", texts(".msg:not(.mine)")), "B's message at A").await;
    tokio::time::sleep(Duration::from_millis(3000)).await; // three more polls each
    for (tab, theirs, mine) in [(&b, hello, XSS), (&a, XSS, hello)] {
        let all = tab.js(&format!("return {}", texts(".msg"))).await;
        let got = tab.js(&format!("return {}", texts(".msg:not(.mine)"))).await;
        let sent = tab.js(&format!("return {}", texts(".msg.mine"))).await;
        assert_eq!((got, sent), (json!([theirs]), json!([mine])), "{}: {all}", tab.who);
    }
    assert_eq!(b.js("return document.querySelectorAll('img[src=\"x\"]').length").await, json!(0));
    a.shot("chat").await;
    b.shot("chat").await;
    // The friend list previews the latest message.
    a.goto("#/friends").await;
    a.until(&format!("document.querySelector(\".friend[data-user-id='{b_id}'] .preview\")?.textContent === {XSS:?}"), "the preview").await;
    a.shot("friends").await;

    // A message the API refuses shows its status_msg (an empty one).
    b.goto(&format!("#/chat/{a_id}")).await;
    b.until("document.querySelector('.chat input[name=message]')", "B's chat again").await;
    b.js("document.querySelector('#toast').classList.remove('show'); return 1").await;
    b.click(".chat button[type=submit]").await;
    b.until("document.querySelector('#toast.show') && document.querySelector('#toast').textContent.length > 0", "the refused message's status_msg").await;

    // Logging out: the token is gone, the feed stays, the navigation offers to log in.
    a.goto(&format!("#/u/{a_id}")).await;
    a.click("#logout").await;
    a.until("location.hash === '#/' && !localStorage.getItem('tikspin.token') && document.querySelector('.slide')", "logged out, feed shown").await;
    a.until("document.querySelector(\"#nav a[href='#/login']\")", "the login link").await;

    // A stale token is dropped without blanking the feed.
    b.js("localStorage.setItem('tikspin.token', 'stale.token.value'); return 1").await;
    b.goto("").await;
    b.until("document.querySelector('.slide') && !localStorage.getItem('tikspin.token')", "the feed with the stale token dropped").await;
    b.until("/expired|过期/.test(document.querySelector('#toast').textContent)", "the expired-session notice").await;

    // Scrolling the feed: the next video is buffered when it comes into view, no layout shift.
    b.js("window.__tikspin.shown = []; document.querySelector('.feed').focus(); return 1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.b.active_element().await.unwrap().send_keys("\u{E015}").await.unwrap(); // ArrowDown
    b.until("window.__tikspin.shown.length >= 1", "the next slide shown").await;
    let scroll = b
        .js(r#"return { shown: window.__tikspin.shown,
                 layout_shift: performance.getEntriesByType('layout-shift').filter(e => !e.hadRecentInput).reduce((s, e) => s + e.value, 0) };"#)
        .await;
    println!("web perf [{}] feed scroll: {scroll}", viewport.name());
    b.shot("feed-next").await;

    a.close().await;
    b.close().await;
}

/// The issue's scenario at the phone viewport, then at 1280×800, against one app.
#[test]
fn the_whole_product_in_headless_chromium_at_phone_and_desktop_sizes() {
    let host = TestHost::app();
    let base = host.client.base.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for viewport in [Viewport::Phone, Viewport::Desktop] {
        runtime.block_on(scenario(&base, viewport));
    }
}
